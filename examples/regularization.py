"""L2 regularization against overfitting, as in the lesson, with nnfast kernels.

A 2-11-1 ReLU network learns to tell points inside the circle ``x1^2 + x2^2 < 2`` from
points outside it, trained twice with mini-batch SGD: on the plain MSE loss, and on
``MSE + 0.03 * l2_loss([w1, w2])`` (``l2_loss(w) = sum(w^2)/2``, tf.nn.l2_loss; biases are
not regularized). The forward and backward passes are NumPy matmuls plus
``nnfast.relu``/``relu_backward``/``mse_loss``/``l2_loss``; the update is ``nnfast.sgd_step``,
whose ``weight_decay=0.03`` adds exactly the penalty's gradient ``0.03*w`` to the weights'.

Prints, for both runs, the final training loss (the one minimized: MSE, or MSE plus the
penalty), its MSE part, ``l2_loss`` of the weights, and training and test accuracy.

Run: ``python examples/regularization.py`` (after ``pip install .``).
"""

import numpy as np

import nnfast

REGULARIZER = 0.03
LR = 0.01
EPOCHS = 400
BATCH_SIZE = 32
HIDDEN = 11


def make_points(rng, n):
    """``n`` normal points in the plane, labelled 1 inside the circle x1^2 + x2^2 < 2."""
    x = rng.normal(size=(n, 2)).astype(np.float32)
    y = (np.sum(x * x, axis=1, keepdims=True) < 2).astype(np.float32)
    return x, y


def forward(params, x):
    """Pre-activation, hidden activation and output of the 2-11-1 network."""
    w1, b1, w2, b2 = params
    h_pre = x @ w1 + b1
    h = nnfast.relu(h_pre)
    return h_pre, h, h @ w2 + b2


def train(x, y, regularizer, seed):
    """Mini-batch SGD on MSE (+ regularizer * l2_loss of the weights); returns the params."""
    rng = np.random.default_rng(seed)
    # the lesson's initialization: normal weights, biases 0.01
    params = [rng.normal(size=(2, HIDDEN)).astype(np.float32),
              np.full(HIDDEN, 0.01, dtype=np.float32),
              rng.normal(size=(HIDDEN, 1)).astype(np.float32),
              np.full(1, 0.01, dtype=np.float32)]
    w1, b1, w2, b2 = params
    for _ in range(EPOCHS):
        for start in range(0, len(x), BATCH_SIZE):
            xb, yb = x[start:start + BATCH_SIZE], y[start:start + BATCH_SIZE]
            h_pre, h, out = forward(params, xb)
            # d MSE / d out = 2(out - y)/N
            _, d_out = nnfast.mse_loss(out, yb)
            d_w2 = h.T @ d_out
            d_b2 = d_out.sum(axis=0)
            d_h_pre = nnfast.relu_backward(h_pre, d_out @ w2.T)
            d_w1 = xb.T @ d_h_pre
            d_b1 = d_h_pre.sum(axis=0)
            # d/dw (regularizer * sum(w^2)/2) = regularizer * w, the weight_decay term
            nnfast.sgd_step([w1, w2], [d_w1, d_w2], lr=LR, weight_decay=regularizer)
            nnfast.sgd_step([b1, b2], [d_b1, d_b2], lr=LR)
    return params


def accuracy(params, x, y):
    """Fraction of points on the right side of the 0.5 threshold."""
    return float(np.mean((forward(params, x)[2] > 0.5) == (y > 0.5)))


def main():
    """Train without and with L2 regularization; return the report lines."""
    rng = np.random.default_rng(116)
    x_train, y_train = make_points(rng, 300)
    x_test, y_test = make_points(rng, 1000)
    lines = []
    for name, regularizer in (("without L2", 0.0), (f"with L2 {REGULARIZER}", REGULARIZER)):
        params = train(x_train, y_train, regularizer, seed=0)
        mse, _ = nnfast.mse_loss(forward(params, x_train)[2], y_train)
        penalty = nnfast.l2_loss([params[0], params[2]])
        loss = mse + regularizer * penalty
        lines.append(
            f"{name:>12}: final loss {loss:.6f} (mse {mse:.6f}, l2_loss(w1, w2) {penalty:.3f}), "
            f"train accuracy {accuracy(params, x_train, y_train):.3f}, "
            f"test accuracy {accuracy(params, x_test, y_test):.3f}")
    return lines


if __name__ == "__main__":
    print("\n".join(main()))
