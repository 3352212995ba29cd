"""The lesson's exponential learning-rate decay, reproduced with nnfast.

Minimizes ``loss = (w + 1)^2`` from ``w = 5`` (float32) with plain SGD for 40 epochs while
the learning rate decays as ``lr = LR_BASE * LR_DECAY ** (epoch / LR_STEP)``. The update is
``nnfast.sgd_step`` and the rate comes from ``nnfast.schedules.ExponentialDecay``; because
the float32 kernel computes ``w - lr*grad`` in float32 with ``lr`` rounded to float32, as
TensorFlow does, the printed lines match the lesson's digit for digit, e.g.
``After 1 epoch,w is 1.174400,loss is 12.959999,lr is 0.198000``.

Run: ``python examples/lr_decay.py`` (after ``pip install .``).
"""

import numpy as np

import nnfast
from nnfast.schedules import ExponentialDecay

EPOCHS = 40
LR_BASE = 0.2  # initial learning rate
LR_DECAY = 0.99  # decay rate
LR_STEP = 1  # epochs per decay period


def main():
    """Train and return the printed lines, one per epoch."""
    schedule = ExponentialDecay(LR_BASE, LR_STEP, LR_DECAY)
    w = np.array(5, dtype=np.float32)
    lines = []
    for epoch in range(EPOCHS):
        lr = schedule(epoch)
        # loss = (w + 1)^2, d loss / dw = 2(w + 1), both in float32
        loss = (w + 1) ** 2
        grad = np.asarray(2 * (w + 1))
        nnfast.sgd_step(w, grad, lr=lr)
        lines.append("After %s epoch,w is %f,loss is %f,lr is %f" % (epoch, w, loss, lr))
    return lines


if __name__ == "__main__":
    print("\n".join(main()))
