"""Five optimizers on the lesson's Iris classifier, with nnfast.

Trains a 4-3 softmax classifier (``logits = x @ w + b``) on the Iris data for 500 epochs of
mini-batch training (batch 32, 120 training and 30 test flowers, shuffled with seed 116 as in
the lesson) with each of SGD, SGD with momentum, Adagrad, RMSprop and Adam at lr 0.1, using
``nnfast.softmax_cross_entropy`` for the loss and its gradient and the ``nnfast.optim``
optimizers (PyTorch's update rules and defaults) for the updates. Prints each optimizer's
final training loss, test accuracy and training time.

The Iris data come from scikit-learn when it is installed, else from the bundled copy of
the same 150 rows in ``examples/data/iris.csv``.

Run: ``python examples/optimizers.py`` (after ``pip install .``).
"""

import pathlib
import time

import numpy as np

import nnfast
from nnfast import optim

LR = 0.1
EPOCHS = 500
BATCH_SIZE = 32
OPTIMIZERS = {
    "SGD": lambda params: optim.SGD(params, lr=LR),
    "SGDM": lambda params: optim.SGD(params, lr=LR, momentum=0.9),
    "Adagrad": lambda params: optim.Adagrad(params, lr=LR),
    "RMSProp": lambda params: optim.RMSprop(params, lr=LR),
    "Adam": lambda params: optim.Adam(params, lr=LR),
}


def load_iris():
    """Iris features (150, 4) as float32 and species ids 0/1/2 (150,) as int64."""
    try:
        from sklearn.datasets import load_iris as sklearn_iris
    except ImportError:
        path = pathlib.Path(__file__).parent / "data" / "iris.csv"
        table = np.loadtxt(path, delimiter=",", skiprows=1)
        return table[:, :4].astype(np.float32), table[:, 4].astype(np.int64)
    data = sklearn_iris()
    return data.data.astype(np.float32), data.target.astype(np.int64)


def train(optimizer_factory, x, y):
    """Train a fresh, identically initialized classifier; return (w, b, final epoch loss)."""
    rng = np.random.default_rng(1)
    w = (0.1 * rng.standard_normal((4, 3))).astype(np.float32)
    b = (0.1 * rng.standard_normal(3)).astype(np.float32)
    optimizer = optimizer_factory([w, b])
    for _ in range(EPOCHS):
        epoch_loss = 0.0
        batches = 0
        for start in range(0, len(x), BATCH_SIZE):
            xb, yb = x[start:start + BATCH_SIZE], y[start:start + BATCH_SIZE]
            # loss = mean_i CE(softmax(x_i w + b), y_i); grad = d loss / d logits
            loss, d_logits = nnfast.softmax_cross_entropy(xb @ w + b, yb)
            optimizer.step([xb.T @ d_logits, d_logits.sum(axis=0)])
            epoch_loss += loss
            batches += 1
    return w, b, epoch_loss / batches


def main():
    """Train with every optimizer; return the report lines."""
    x, y = load_iris()
    order = np.random.default_rng(116).permutation(len(x))
    x, y = x[order], y[order]
    x_train, y_train, x_test, y_test = x[:-30], y[:-30], x[-30:], y[-30:]
    lines = [f"{'optimizer':<10}{'final loss':>12}{'test acc':>10}{'time (s)':>10}"]
    for name, factory in OPTIMIZERS.items():
        start = time.perf_counter()
        w, b, loss = train(factory, x_train, y_train)
        seconds = time.perf_counter() - start
        test_accuracy = float(np.mean(np.argmax(x_test @ w + b, axis=1) == y_test))
        lines.append(f"{name:<10}{loss:>12.4f}{test_accuracy:>10.3f}{seconds:>10.3f}")
    return lines


if __name__ == "__main__":
    print("\n".join(main()))
