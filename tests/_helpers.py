"""Shared test machinery: tolerances (all of them, here and nowhere else), comparisons,
random inputs, and the optimizer table the optimizer tests iterate over.

How kernels are checked
-----------------------
Every kernel result is compared with ``nnfast.reference`` run in float64 on float64 copies
of the kernel's inputs. For float32 kernels the difference is the kernel's own float32
rounding, so the tolerance must be a bound on that rounding, not a guess:

* Elementwise optimizer updates use a *running error bound* (class ``Bound``): the update
  formula of ``src/ops/optim.h`` is evaluated once more in float64 while tracking, per
  element, a first-order bound on the error a kernel of unit roundoff ``u`` makes
  (every + - * / sqrt adds ``u*|result|``; errors of operands propagate through the
  derivative; every hyperparameter rounded to the kernel's dtype carries ``u*|x|``).
  This bound is large exactly where the math is ill-conditioned (``g + wd*p`` cancelling,
  ``sqrt(q - c^2)`` near zero, Adagrad's ``g/|g|`` at ``g = 0``) and tiny elsewhere, so the
  tests stay tight on well-conditioned elements without flaking on ill-conditioned ones.
  Carried over many steps it bounds the drift of a float32 run from a float64 one.
* Activations and losses use per-op relative tolerances counted in roundings (below),
  or ULP budgets (sigmoid/tanh accuracy contract).

``SAFETY`` covers what a first-order bound neglects (products of two errors) and the
reference's own float64 rounding, which is folded in by using ``u = u_dtype + u_float64``.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

import nnfast
from nnfast import reference

# --------------------------------------------------------------------------- tolerances

FLOATS = (np.float32, np.float64)

#: Unit roundoff: the largest relative error of one correctly rounded float operation.
UNIT_ROUNDOFF = {np.dtype(np.float32): 2.0**-24, np.dtype(np.float64): 2.0**-53}

#: Absolute error floor of one rounding in the subnormal range (gradual underflow).
SUBNORMAL_FLOOR = {np.dtype(t): float(np.finfo(t).smallest_subnormal) for t in FLOATS}

#: Multiplier on every derived error bound: first-order analysis drops products of errors,
#: and the float64 reference rounds too. 2 is ample for both (they are O(u^2) and O(u64)).
SAFETY = 2.0

#: Elementwise kernels: the number of roundings between exact inputs and the stored result
#: (each contributes at most one unit roundoff of relative error). Derived from
#: src/ops/activation.h and src/ops/loss.h:
ROUNDINGS = {
    "relu": 0,                  # a select: exact
    "leaky_relu": 2,            # alpha rounded to the dtype, then one product
    "relu_backward": 0,         # a select: exact
    "leaky_relu_backward": 2,   # alpha rounded, one product
    "sigmoid_backward": 3,      # 1 - y, dy*(1-y), *y
    # tanh_backward: dy*(1 - y*y) cancels near |y| = 1; bounded absolutely in dy by
    # elementwise_tolerance below, not relatively.
    "mse_term": 3,              # pred - target, the square
    "mse_grad": 4,              # pred - target, scale rounded, product (+1 spare for 2/N)
    "cross_entropy_term": 5,    # log (<= 2 ulp: log_float, or libm for float64), product, +1 spare
    "cross_entropy_grad": 4,    # t/p, scale rounded, product (+1 spare)
    "store_row_loss": 1,        # a float64 row loss stored in the dtype ("none")
}

#: ULP budgets of the accuracy contract (src/ops/activation.h): float32 sigmoid/tanh within
#: 4 ULP of the float64 result rounded to float32. float64 sigmoid/tanh (exp_double,
#: tanh_double) are held to 4 ULP against extended precision in test_activations.py; against
#: the float64 reference (NumPy's exp/tanh, itself off by up to ~1 ULP) the same 4 applies.
ULP_BUDGET = {np.dtype(np.float32): 4, np.dtype(np.float64): 4}


def unit_roundoff(dtype):
    """u of a kernel computing in ``dtype``, plus the float64 reference's own u."""
    return UNIT_ROUNDOFF[np.dtype(dtype)] + UNIT_ROUNDOFF[np.dtype(np.float64)]


def rounding_rtol(op, dtype):
    """Relative tolerance of an elementwise op from its rounding count."""
    return SAFETY * ROUNDINGS[op] * unit_roundoff(dtype)


def elementwise_tolerance(op, dtype, ref, y=None, dy=None):
    """Per-element tolerance of an activation kernel's result against the float64 ``ref``.

    Ops listed in ROUNDINGS: ``n`` roundings of relative error u each (plus the subnormal
    floor of each). tanh_backward, dy*(1 - y*y): y*y carries u*y^2, the subtraction
    u*|1 - y^2| (it cancels as |y| -> 1, so the bound is absolute in dy), the product u*|ref|.
    """
    dtype = np.dtype(dtype)
    u, eta = unit_roundoff(dtype), SUBNORMAL_FLOOR[dtype]
    ref = np.abs(np.asarray(ref, dtype=np.float64))
    with quiet():
        if op == "tanh_backward":
            y = np.asarray(y, dtype=np.float64)
            dy = np.abs(np.asarray(dy, dtype=np.float64))
            return SAFETY * (u * (dy * (y * y + np.abs(1 - y * y)) + ref) + 3 * eta)
        n = ROUNDINGS[op]
        return SAFETY * n * (u * ref + eta)


def sum_rtol(n):
    """Relative error of a float64 sum of n same-signed terms: kernels add naively within
    16384-element chunks and then add the chunk partials; the reference sums pairwise."""
    chunk = 16384
    return SAFETY * (min(n, chunk) + n / chunk + 64) * UNIT_ROUNDOFF[np.dtype(np.float64)]


# --------------------------------------------------------------------------- comparisons


def quiet():
    """NumPy floating-point warnings off (the suite runs with warnings as errors, and the
    reference legitimately makes inf/NaN on special-value inputs)."""
    return np.errstate(all="ignore")


def _fmt(a):
    return np.array2string(np.asarray(a), precision=10, threshold=8)


def assert_close(got, ref, tol, what="result"):
    """``got`` (a kernel result) equals ``ref`` (float64 oracle) within ``tol`` elementwise.

    * shapes equal;
    * NaN exactly where ``ref`` is NaN;
    * where ``ref`` is +-inf, or is finite but beyond the largest value of got's dtype (the
      exact result overflows it), got must equal ``ref`` rounded to got's dtype (+-inf);
    * elsewhere ``|got - ref| <= tol`` (``tol`` a scalar or an array broadcastable to ref),
      and ``tol`` itself must be finite there, so no comparison is vacuous.
    """
    got = np.asarray(got)
    ref64 = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref64.shape, f"{what}: shape {got.shape} != expected {ref64.shape}"
    with quiet():
        tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), ref64.shape)
        got64 = got.astype(np.float64)
        ref_nan = np.isnan(ref64)
        got_nan = np.isnan(got64)
        bad_nan = ref_nan != got_nan
        assert not bad_nan.any(), (
            f"{what}: NaN positions differ at {np.argwhere(bad_nan)[:5].tolist()}: "
            f"got {_fmt(got64[bad_nan][:5])}, expected {_fmt(ref64[bad_nan][:5])}")
        # exact results that are infinite, or finite but beyond the dtype's range (so they
        # round to +-inf in it), must come out as that infinity
        beyond = np.isinf(ref64)
        if got.dtype.kind == "f":
            limit = float(np.finfo(got.dtype).max) * (1 + 2 * UNIT_ROUNDOFF[got.dtype])
            beyond |= np.abs(ref64) > limit
        expected_inf = np.sign(ref64[beyond]) * np.inf
        bad_inf = got64[beyond] != expected_inf
        assert not bad_inf.any(), (
            f"{what}: where the exact result is infinite or overflows {got.dtype}, got "
            f"{_fmt(got64[beyond][bad_inf][:5])}, expected {_fmt(expected_inf[bad_inf][:5])}")
        check = ~ref_nan & ~beyond
        assert np.isfinite(tol[check]).all(), f"{what}: tolerance is not finite (test bug)"
        err = np.abs(got64 - ref64)
        bad = check & ~(err <= tol)
    if bad.any():
        idx = np.argwhere(bad)
        ratio = np.where(bad, err / np.where(tol > 0, tol, np.finfo(np.float64).tiny), 0)
        worst = np.unravel_index(np.argmax(ratio), ratio.shape)
        raise AssertionError(
            f"{what}: {bad.sum()} of {bad.size} elements out of tolerance "
            f"(first at {idx[:3].tolist()}); worst at {list(worst)}: got {got64[worst]!r}, "
            f"expected {ref64[worst]!r}, |diff| {err[worst]:.3e} > tol {tol[worst]:.3e}")


def bits(a):
    """The raw bits of a float array (NaN payloads and signed zeros included)."""
    a = np.ascontiguousarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_same_bits(a, b, what="result"):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (
        f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
    diff = bits(a) != bits(b)
    assert not diff.any(), (
        f"{what}: {diff.sum()} elements differ bitwise, first at "
        f"{np.argwhere(diff)[:3].tolist()}: {_fmt(a[diff][:3])} vs {_fmt(b[diff][:3])}")


# --------------------------------------------------------------------------- inputs

#: The shapes every elementwise kernel is run on: 0-d, empty, one element, odd, 2-D, just
#: under/over powers of two (no vector width divides them), 3-D.
SHAPES = [(), (0,), (1,), (7,), (3, 5), (1023,), (4097,), (2, 3, 5)]
SHAPE_IDS = ["x".join(map(str, s)) or "0d" for s in SHAPES]

#: A few million elements: many 16384-element chunks, threaded (> 131072).
LARGE = (3_000_001,)


def randn(rng, shape, dtype, scale=1.0):
    return np.array(rng.standard_normal(shape) * scale, dtype=dtype)


def copies64(arrays):
    return [np.array(a, dtype=np.float64) for a in arrays]


@contextlib.contextmanager
def num_threads(n):
    """Run kernels with n threads, restoring the previous count afterwards."""
    before = nnfast.get_num_threads()
    nnfast.set_num_threads(n)
    try:
        yield
    finally:
        nnfast.set_num_threads(before)


# --------------------------------------------------------------------------- error bounds


class Bound:
    """A float64 value ``v`` with a first-order bound ``e`` on the rounding error a kernel
    makes computing it; ``u`` (the kernel's unit roundoff plus float64's) and ``eta`` (its
    subnormal floor) come from the ``BoundContext`` that made the inputs."""

    __slots__ = ("v", "e", "u", "eta")

    def __init__(self, v, e, u, eta):
        self.v = np.asarray(v, dtype=np.float64)
        self.e = np.asarray(e, dtype=np.float64)
        self.u, self.eta = u, eta

    def _new(self, v, e):
        return Bound(v, e + self.u * np.abs(v) + self.eta, self.u, self.eta)

    def _wrap(self, other):
        if isinstance(other, Bound):
            return other
        raise TypeError("combine Bounds only; round scalars with ctx.scalar()")

    def __neg__(self):
        return Bound(-self.v, self.e, self.u, self.eta)

    def __add__(self, other):
        o = self._wrap(other)
        return self._new(self.v + o.v, self.e + o.e)

    def __sub__(self, other):
        o = self._wrap(other)
        return self._new(self.v - o.v, self.e + o.e)

    def __mul__(self, other):
        o = self._wrap(other)
        return self._new(self.v * o.v, np.abs(self.v) * o.e + np.abs(o.v) * self.e + self.e * o.e)

    def __truediv__(self, other):
        o = self._wrap(other)
        q = self.v / o.v
        return self._new(q, (self.e + np.abs(q) * o.e) / np.abs(o.v))

    def sqrt(self):
        r = np.sqrt(self.v)
        # |sqrt(a + d) - sqrt(a)| <= min(|d| / (2 sqrt a), sqrt|d|)
        prop = np.minimum(np.where(r > 0, self.e / (2 * np.where(r > 0, r, 1)), np.inf),
                          np.sqrt(self.e))
        return self._new(r, prop)

    def maximum(self, other):
        o = self._wrap(other)
        return Bound(np.maximum(self.v, o.v), np.maximum(self.e, o.e), self.u, self.eta)

    def sign(self):
        # Exact where the value cannot change sign within its error; elsewhere the kernel's
        # sign may be off by up to 2 (+1 for -1).
        flips = (self.e > 0) & (np.abs(self.v) <= self.e)
        return Bound(np.sign(self.v), np.where(flips, 2.0, 0.0), self.u, self.eta)

    def abs(self):
        return Bound(np.abs(self.v), self.e, self.u, self.eta)


class BoundContext:
    """Makes Bounds for a kernel computing in ``dtype``."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.u = unit_roundoff(dtype)
        self.eta = SUBNORMAL_FLOOR[self.dtype]

    def exact(self, a):
        """An input array (stored exactly in the kernel's dtype)."""
        a = np.array(a, dtype=np.float64)  # a copy: the reference updates its inputs
        return Bound(a, np.zeros_like(a), self.u, self.eta)

    def scalar(self, x):
        """A hyperparameter computed in double and rounded to the kernel's dtype (relative
        error u, or absolute eta where it rounds into the subnormal range)."""
        return Bound(x, self.u * abs(x) + (self.eta if x != 0 else 0.0), self.u, self.eta)


# --------------------------------------------------------------------------- optimizers

#: The step functions under test, with the state lists each takes: positional ones (in
#: order) and keyword ones that exist only for some options.
OPTIMIZERS = ("sgd", "sgdm", "adagrad", "rmsprop", "adam", "adamw", "nadam", "radam", "lamb",
              "lion", "adamax", "adadelta")

_POSITIONAL_STATES = {
    "sgd": [], "sgdm": ["momentum_buffers"], "adagrad": ["sums"], "rmsprop": ["square_avgs"],
    "adam": ["exp_avgs", "exp_avg_sqs"], "adamw": ["exp_avgs", "exp_avg_sqs"],
    "nadam": ["exp_avgs", "exp_avg_sqs"], "radam": ["exp_avgs", "exp_avg_sqs"],
    "lamb": ["exp_avgs", "exp_avg_sqs"],
    "lion": ["exp_avgs"], "adamax": ["exp_avgs", "exp_infs"],
    "adadelta": ["square_avgs", "acc_deltas"],
}


def nadam_mu_product(step, beta1=0.9, momentum_decay=4e-3):
    """NAdam's P_t = mu_1 * ... * mu_t, multiplied in float32 as torch keeps it."""
    product = np.float32(1.0)
    for t in range(1, step + 1):
        product = product * np.float32(beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay)))
    return float(product)


def at_step(kind, hp, step):
    """``hp`` for the step count ``step`` (of the optimizers that take one): with NAdam's
    mu_product for it too."""
    if kind not in ("adam", "adamw", "nadam", "radam", "adamax", "lamb"):
        return hp
    if kind == "nadam":
        return dict(hp, step=step, mu_product=nadam_mu_product(
            step, hp.get("beta1", 0.9), hp.get("momentum_decay", 4e-3)))
    return dict(hp, step=step)


def state_names(kind, hp):
    names = list(_POSITIONAL_STATES[kind])
    if kind == "rmsprop":
        if hp.get("centered", False):
            names.append("grad_avgs")
        if hp.get("momentum", 0.0) > 0:
            names.append("momentum_buffers")
    if kind in ("adam", "adamw") and hp.get("amsgrad", False):
        names.append("max_exp_avg_sqs")
    return names


def call_step(module, kind, params, grads, states, hp):
    """``module.<kind>_step(params, grads, *positional states, **keyword states, **hp)``."""
    fn = getattr(module, f"{kind}_step")
    positional = [states[n] for n in _POSITIONAL_STATES[kind]]
    keyword = {n: v for n, v in states.items() if n not in _POSITIONAL_STATES[kind]}
    return fn(params, grads, *positional, **keyword, **hp)


def reference_step(kind, params, grads, states, hp):
    with quiet():
        return call_step(reference, kind, params, grads, states, hp)


def make_states(rng, kind, hp, shape, dtype):
    """Valid, nonzero optimizer states: sums and second moments >= 0, and for centered
    RMSprop a square average above the squared mean gradient (so sqrt(q - c^2) is real)."""
    states = {}
    for name in state_names(kind, hp):
        if name in ("momentum_buffers", "exp_avgs"):
            a = rng.standard_normal(shape) * 0.5
        elif name == "sums":
            a = rng.random(shape) * 2
        elif name == "exp_avg_sqs":
            a = rng.random(shape) ** 2
        elif name == "exp_infs":  # infinity norms: >= 0, some below |g'| + eps
            a = rng.random(shape) * 1.5
        elif name == "acc_deltas":
            a = rng.random(shape) ** 2 * 0.1
        elif name == "square_avgs":
            a = rng.random(shape) + 0.01
        elif name == "grad_avgs":
            a = rng.standard_normal(shape) * 0.3
        else:  # max_exp_avg_sqs: some above v, some below
            a = rng.random(shape) ** 2
        states[name] = a
    if "grad_avgs" in states:
        states["square_avgs"] = states["square_avgs"] + states["grad_avgs"] ** 2
    return {k: np.array(v, dtype=dtype) for k, v in states.items()}


def _effective_grad(ctx, p, g, *, weight_decay, l1, maximize, grad_scale):
    g = ctx.scalar(grad_scale) * g
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + ctx.scalar(weight_decay) * p
    if l1 != 0:
        g = g + ctx.scalar(l1) * p.sign()
    return g


def _moments(ctx, p, g, states, hp, lr, decoupled, common):
    """The Adam family's first half on Bounds: (p after a decoupled decay, g', m, v)."""
    S = ctx.scalar
    wd = common["weight_decay"]
    d = _effective_grad(ctx, p, g, weight_decay=0.0 if decoupled else wd, l1=common["l1"],
                        maximize=common["maximize"], grad_scale=common["grad_scale"])
    if decoupled and wd != 0:
        p = p * S(1.0 - lr * wd)
    m = S(hp.get("beta1", 0.9)) * states["exp_avgs"] + S(1.0 - hp.get("beta1", 0.9)) * d
    v = S(hp.get("beta2", 0.999)) * states["exp_avg_sqs"] + S(1.0 - hp.get("beta2", 0.999)) * (d * d)
    return p, d, m, v


def bound_step(ctx, kind, p, g, states, hp):
    """The update of ``src/ops/optim.h`` on Bounds: returns {"params": Bound, state: Bound}.

    Mirrors the kernel's operation order and its hyperparameter roundings; values follow
    ``nnfast.reference``'s definition (g' from p before AdamW's decay).
    """
    S = ctx.scalar
    lr = hp["lr"] if "lr" in hp else 1e-3
    common = dict(weight_decay=hp.get("weight_decay", 1e-2 if kind == "adamw" else 0.0),
                  l1=hp.get("l1", 0.0), maximize=hp.get("maximize", False),
                  grad_scale=hp.get("grad_scale", 1.0))
    out = {}
    if kind == "sgd":
        d = _effective_grad(ctx, p, g, **common)
        out["params"] = p - S(lr) * d
    elif kind == "sgdm":
        mu, damp = hp.get("momentum", 0.9), hp.get("dampening", 0.0)
        d = _effective_grad(ctx, p, g, **common)
        b = S(mu) * states["momentum_buffers"] + S(1.0 - damp) * d
        direction = d + S(mu) * b if hp.get("nesterov", False) else b
        out["momentum_buffers"] = b
        out["params"] = p - S(lr) * direction
    elif kind == "adagrad":
        d = _effective_grad(ctx, p, g, **common)
        s = states["sums"] + d * d
        out["sums"] = s
        out["params"] = p - S(lr) * (d / (s.sqrt() + S(hp.get("eps", 1e-10))))
    elif kind == "rmsprop":
        alpha, eps = hp.get("alpha", 0.99), hp.get("eps", 1e-8)
        mu = hp.get("momentum", 0.0)
        d = _effective_grad(ctx, p, g, **common)
        q = S(alpha) * states["square_avgs"] + S(1.0 - alpha) * (d * d)
        out["square_avgs"] = q
        if hp.get("centered", False):
            c = S(alpha) * states["grad_avgs"] + S(1.0 - alpha) * d
            out["grad_avgs"] = c
            avg = (q - c * c).sqrt() + S(eps)
        else:
            avg = q.sqrt() + S(eps)
        if mu > 0:
            b = S(mu) * states["momentum_buffers"] + d / avg
            out["momentum_buffers"] = b
            out["params"] = p - S(lr) * b
        else:
            out["params"] = p - S(lr) * (d / avg)
    elif kind == "nadam":
        step, product = hp["step"], hp["mu_product"]
        beta1, beta2 = hp.get("beta1", 0.9), hp.get("beta2", 0.999)
        psi, lr = hp.get("momentum_decay", 4e-3), hp.get("lr", 2e-3)
        decoupled = hp.get("decoupled_weight_decay", False)
        mu = beta1 * (1 - 0.5 * 0.96 ** (step * psi))
        mu_next = beta1 * (1 - 0.5 * 0.96 ** ((step + 1) * psi))
        p, d, m, v = _moments(ctx, p, g, states, hp, lr, decoupled, common)
        out["exp_avgs"], out["exp_avg_sqs"] = m, v
        denom = (v / S(1.0 - beta2**step)).sqrt() + S(hp.get("eps", 1e-8))
        p = p - S(lr * (1 - mu) / (1 - product)) * d / denom
        out["params"] = p - S(lr * mu_next / (1 - product * mu_next)) * m / denom
    elif kind == "radam":
        step = hp["step"]
        beta1, beta2 = hp.get("beta1", 0.9), hp.get("beta2", 0.999)
        p, _, m, v = _moments(ctx, p, g, states, hp, lr, hp.get("decoupled_weight_decay", False),
                              common)
        out["exp_avgs"], out["exp_avg_sqs"] = m, v
        bias_correction1, bias_correction2 = 1 - beta1**step, 1 - beta2**step
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * beta2**step / bias_correction2
        if rho_t > 5:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                             / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            step_size = lr / bias_correction1 * math.sqrt(bias_correction2) * rect
            out["params"] = p - S(step_size) * (m / (v.sqrt() + S(hp.get("eps", 1e-8))))
        else:
            out["params"] = p - S(lr / bias_correction1) * m
    elif kind == "lamb":
        out = _lamb_bound(ctx, p, g, states, hp)
    elif kind == "lion":
        beta1, beta2, wd = hp.get("beta1", 0.9), hp.get("beta2", 0.99), common["weight_decay"]
        d = _effective_grad(ctx, p, g, **dict(common, weight_decay=0.0))
        c = S(beta1) * states["exp_avgs"] + S(1.0 - beta1) * d
        out["params"] = p * S(1.0 - lr * wd) - S(lr) * c.sign()
        out["exp_avgs"] = S(beta2) * states["exp_avgs"] + S(1.0 - beta2) * d
    elif kind == "adamax":
        beta1, beta2 = hp.get("beta1", 0.9), hp.get("beta2", 0.999)
        d = _effective_grad(ctx, p, g, **common)
        m = S(beta1) * states["exp_avgs"] + S(1.0 - beta1) * d
        u = (states["exp_infs"] * S(beta2)).maximum(d.abs() + S(hp.get("eps", 1e-8)))
        out["exp_avgs"], out["exp_infs"] = m, u
        out["params"] = p - (S(lr / (1.0 - beta1 ** hp["step"])) * m) / u
    elif kind == "adadelta":
        rho, eps = hp.get("rho", 0.9), hp.get("eps", 1e-6)
        d = _effective_grad(ctx, p, g, **common)
        v = states["square_avgs"] * S(rho) + (S(1.0 - rho) * d) * d
        delta = ((states["acc_deltas"] + S(eps)).sqrt() / (v + S(eps)).sqrt()) * d
        out["square_avgs"] = v
        out["acc_deltas"] = states["acc_deltas"] * S(rho) + (S(1.0 - rho) * delta) * delta
        out["params"] = p - S(lr) * delta
    else:  # adam, adamw
        step = hp["step"]
        beta1, beta2 = hp.get("beta1", 0.9), hp.get("beta2", 0.999)
        decoupled = kind == "adamw" or hp.get("decoupled_weight_decay", False)
        wd = common["weight_decay"]
        d = _effective_grad(ctx, p, g, weight_decay=0.0 if decoupled else wd,
                            l1=common["l1"], maximize=common["maximize"],
                            grad_scale=common["grad_scale"])
        if decoupled and wd != 0:
            p = p * S(1.0 - lr * wd)
        m = S(beta1) * states["exp_avgs"] + S(1.0 - beta1) * d
        v = S(beta2) * states["exp_avg_sqs"] + S(1.0 - beta2) * (d * d)
        out["exp_avgs"], out["exp_avg_sqs"] = m, v
        if hp.get("amsgrad", False):
            v = states["max_exp_avg_sqs"].maximum(v)
            out["max_exp_avg_sqs"] = v
        denom = v.sqrt() / S(math.sqrt(1.0 - beta2**step)) + S(hp.get("eps", 1e-8))
        out["params"] = p - S(lr / (1.0 - beta1**step)) * (m / denom)
    return out


def lamb_clip(grads, hp):
    """LAMB's clip factor of the call's grads (``hp["grad_scale"]`` times them), and the
    number of terms of its float64 sum."""
    scale, limit = hp.get("grad_scale", 1.0), hp.get("max_grad_norm", 1.0)
    total = math.sqrt(math.fsum(float(np.sum(np.square(scale * np.asarray(g, np.float64))))
                                for g in grads))
    terms = sum(np.size(g) for g in grads)
    return (limit / total if limit > 0 and total > limit else 1.0), terms


def _lamb_bound(ctx, p, g, states, hp):
    """LAMB (ops/optimizers/lamb.h) on Bounds. The trust ratio r couples a tensor's
    elements: its stated bound is relative, |dr| / r <= ||e_u|| / ||u|| + n u64 (the
    norm's triangle inequality, plus the float64 sums), and the clip factor, from the
    float64 global norm, is held to the rounding of grad_scale * factor plus n u64.
    hp["_clip"] is (factor, terms of the global sum) of a call of several tensors
    (expected_step); without it the call is of this tensor alone."""
    S = ctx.scalar
    u64 = 2.0**-53
    step, lr = hp["step"], hp.get("lr", 1e-3)
    beta1, beta2 = hp.get("beta1", 0.9), hp.get("beta2", 0.999)
    wd = hp.get("weight_decay", 0.01)
    adam_w = hp.get("adam_w_mode", True)
    factor, terms = hp["_clip"] if "_clip" in hp else lamb_clip([g.v], hp)
    scale = hp.get("grad_scale", 1.0) * factor
    scale_bound = S(scale)
    scale_bound = Bound(scale_bound.v, scale_bound.e + terms * u64 * abs(scale), ctx.u, ctx.eta)
    d = scale_bound * g
    if hp.get("maximize", False):
        d = -d
    if not adam_w and wd != 0:
        d = d + S(wd) * p
    beta3 = 1.0 - beta1 if hp.get("grad_averaging", True) else 1.0
    corrected = hp.get("bias_correction", True)
    m = S(beta1) * states["exp_avgs"] + S(beta3) * d
    v = S(beta2) * states["exp_avg_sqs"] + S(1.0 - beta2) * (d * d)
    c1 = S(1.0 - beta1**step if corrected else 1.0)
    c2 = S(1.0 - beta2**step if corrected else 1.0)
    u = (m / c1) / ((v / c2).sqrt() + S(hp.get("eps", 1e-6)))
    if adam_w and wd != 0:
        u = u + S(wd) * p
    n = max(np.size(p.v), 1)
    param_norm = float(np.sqrt(np.sum(np.square(p.v))))
    update_norm = float(np.sqrt(np.sum(np.square(u.v))))
    ratio, ratio_rel = 1.0, 0.0
    if (wd != 0 or hp.get("use_nvlamb", False)) and param_norm != 0 and update_norm != 0:
        ratio = param_norm / update_norm
        ratio_rel = float(np.sqrt(np.sum(np.square(u.e)))) / update_norm + 2 * n * u64
    step_size = S(lr * ratio)
    step_size = Bound(step_size.v, step_size.e + ratio_rel * abs(lr * ratio), ctx.u, ctx.eta)
    return {"exp_avgs": m, "exp_avg_sqs": v, "params": p - step_size * u}


def expected_step(kind, params, grads, states, hp):
    """What one step must produce: (reference results, error bounds), per tensor.

    The reference runs on float64 copies; the bounds (class ``Bound``) are for a kernel
    computing in the arrays' dtype. Returns a list, one entry per tensor, of
    ``{output name: (reference array, Bound)}``; output names are "params" and the states'.
    """
    single = isinstance(params, np.ndarray)
    as_list = (lambda a: [a]) if single else list
    p64, g64 = copies64(as_list(params)), copies64(as_list(grads))
    s64 = {n: copies64(as_list(v)) for n, v in states.items()}
    dtype = as_list(params)[0].dtype if p64 else np.dtype(np.float64)
    ctx = BoundContext(dtype)
    bound_hp = {**hp, "_clip": lamb_clip(g64, hp)} if kind == "lamb" else hp
    with quiet():
        bounds = [bound_step(ctx, kind, ctx.exact(p), ctx.exact(g),
                             {n: ctx.exact(s64[n][i]) for n in s64}, bound_hp)
                  for i, (p, g) in enumerate(zip(p64, g64))]
    unwrap = (lambda lst: lst[0]) if single else (lambda lst: lst)
    reference_step(kind, unwrap(p64), unwrap(g64), {n: unwrap(v) for n, v in s64.items()}, hp)
    return [{"params": (p64[i], b["params"]), **{n: (s64[n][i], b[n]) for n in s64}}
            for i, b in enumerate(bounds)]


def compare_step(kind, hp, params, states, expected, what=""):
    """Kernel outputs (params and states after the step) against ``expected_step``'s."""
    single = isinstance(params, np.ndarray)
    as_list = (lambda a: [a]) if single else list
    got = {"params": as_list(params), **{n: as_list(v) for n, v in states.items()}}
    for i, outputs in enumerate(expected):
        for name, (ref, bound) in outputs.items():
            out = got[name][i]
            label = f"{kind}{hp} {what} {name}[{i}] ({out.dtype}, shape {out.shape})"
            # the bound's own value must agree with the oracle: it mirrors the same formula
            assert_close(bound.v, ref, SAFETY * bound.e, label + " [bound model vs reference]")
            assert_close(out, ref, SAFETY * bound.e, label)


def check_step(kind, params, grads, states, hp, what=""):
    """One kernel step on (lists of) arrays of one dtype, checked against the reference.

    Every output (params and each state) must lie within SAFETY times its running error
    bound of the float64 reference. The kernel's arrays are updated in place, so callers
    can chain steps. The step function must return None.
    """
    expected = expected_step(kind, params, grads, states, hp)
    assert call_step(nnfast, kind, params, grads, states, hp) is None
    compare_step(kind, hp, params, states, expected, what)


#: Option sets covering every option of every step function; ids name them.
OPTIMIZER_CASES = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.05, weight_decay=0.1)),
    ("sgd", dict(lr=0.05, l1=0.01)),
    ("sgd", dict(lr=0.2, maximize=True, weight_decay=0.01, l1=0.003)),
    ("sgd", dict(lr=0.1, grad_scale=0.3, maximize=True, weight_decay=0.01)),
    ("sgdm", dict(lr=0.1)),
    ("sgdm", dict(lr=0.1, momentum=0.8, dampening=0.3)),
    ("sgdm", dict(lr=0.1, momentum=0.9, dampening=0.9)),  # the lesson's EMA momentum
    ("sgdm", dict(lr=0.05, momentum=0.95, nesterov=True)),
    ("sgdm", dict(lr=0.05, momentum=0.0)),
    ("sgdm", dict(lr=0.05, nesterov=True, weight_decay=0.1, l1=0.01, maximize=True)),
    ("sgdm", dict(lr=0.05, grad_scale=2.0**-16)),
    ("adagrad", dict(lr=0.1)),
    ("adagrad", dict(lr=0.1, eps=0.0)),  # the lesson's form
    ("adagrad", dict(lr=0.3, eps=1e-6, weight_decay=0.05, l1=0.01, maximize=True)),
    ("adagrad", dict(lr=0.1, grad_scale=7.0)),
    ("rmsprop", dict(lr=0.01)),
    ("rmsprop", dict(lr=0.01, alpha=0.9, eps=0.0)),  # the lesson's form
    ("rmsprop", dict(lr=0.01, centered=True)),
    ("rmsprop", dict(lr=0.01, momentum=0.9)),
    ("rmsprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1, l1=0.01,
                     maximize=True)),
    ("rmsprop", dict(lr=0.01, alpha=1.0)),
    ("rmsprop", dict(lr=0.01, alpha=0.0)),
    ("rmsprop", dict(lr=0.01, centered=True, momentum=0.5, grad_scale=0.0)),
    ("adam", dict(lr=1e-3, step=1)),
    ("adam", dict(lr=1e-2, step=7, beta1=0.8, beta2=0.99, eps=1e-6)),
    ("adam", dict(lr=1e-2, step=3, eps=0.0)),  # the lesson's form
    ("adam", dict(lr=1e-2, step=2, amsgrad=True)),
    ("adam", dict(lr=1e-2, step=5, weight_decay=0.1)),
    ("adam", dict(lr=1e-2, step=5, weight_decay=0.1, decoupled_weight_decay=True)),
    ("adam", dict(lr=1e-2, step=4, amsgrad=True, decoupled_weight_decay=True,
                  weight_decay=0.05, l1=0.01, maximize=True)),
    ("adam", dict(lr=1e-2, step=1000, beta1=0.0, beta2=0.0)),
    ("adamw", dict(lr=1e-3, step=1)),
    ("adamw", dict(lr=1e-2, step=10, weight_decay=0.2, amsgrad=True)),
    ("adamw", dict(lr=1e-2, step=2, l1=0.02, maximize=True)),
    ("adam", dict(lr=1e-2, step=3, grad_scale=0.7 / 65536, weight_decay=0.1)),
    ("adamw", dict(lr=1e-2, step=2, grad_scale=0.37, amsgrad=True)),
    ("nadam", dict(lr=2e-3, step=1, mu_product=nadam_mu_product(1))),
    ("nadam", dict(lr=1e-2, step=7, beta1=0.8, beta2=0.99, eps=1e-6, momentum_decay=0.01,
                   mu_product=nadam_mu_product(7, 0.8, 0.01))),
    ("nadam", dict(lr=1e-2, step=3, eps=0.0, mu_product=nadam_mu_product(3))),
    ("nadam", dict(lr=1e-2, step=5, weight_decay=0.1, mu_product=nadam_mu_product(5))),
    ("nadam", dict(lr=1e-2, step=4, weight_decay=0.05, decoupled_weight_decay=True, l1=0.01,
                   maximize=True, mu_product=nadam_mu_product(4))),
    ("nadam", dict(lr=1e-2, step=1000, momentum_decay=0.0, mu_product=0.45**1000)),
    ("nadam", dict(lr=1e-2, step=10, beta1=0.0, beta2=0.0, mu_product=0.0)),
    ("nadam", dict(lr=1e-2, step=2, grad_scale=0.7 / 65536, weight_decay=0.1, maximize=True,
                   mu_product=nadam_mu_product(2))),
    ("radam", dict(lr=1e-3, step=1)),
    ("radam", dict(lr=1e-2, step=5)),   # rho_5 = 4.996: unrectified
    ("radam", dict(lr=1e-2, step=6)),   # rho_6 = 5.994: rectified
    ("radam", dict(lr=1e-2, step=100, beta1=0.8, beta2=0.99, eps=1e-6)),
    ("radam", dict(lr=1e-2, step=20, eps=0.0, weight_decay=0.1)),
    ("radam", dict(lr=1e-2, step=3, weight_decay=0.1, decoupled_weight_decay=True)),
    ("radam", dict(lr=1e-2, step=40, weight_decay=0.05, decoupled_weight_decay=True, l1=0.01,
                   maximize=True)),
    ("radam", dict(lr=1e-2, step=1000, beta1=0.0, beta2=0.0)),  # rho_inf = 1: never rectified
    ("radam", dict(lr=1e-2, step=9, grad_scale=0.37, maximize=True, weight_decay=0.1)),
    ("lamb", dict(lr=1e-2, step=1)),
    ("lamb", dict(lr=1e-2, step=5, beta1=0.8, beta2=0.99, eps=1e-8, max_grad_norm=0.0)),
    ("lamb", dict(lr=1e-2, step=3, weight_decay=0.0)),
    ("lamb", dict(lr=1e-2, step=3, weight_decay=0.0, use_nvlamb=True)),
    ("lamb", dict(lr=1e-2, step=4, adam_w_mode=False, weight_decay=0.1)),
    ("lamb", dict(lr=1e-2, step=2, grad_averaging=False, bias_correction=False)),
    ("lamb", dict(lr=1e-2, step=6, max_grad_norm=1e6)),
    ("lamb", dict(lr=1e-2, step=2, grad_scale=0.37 / 1024, maximize=True)),
    ("lion", dict(lr=1e-4)),
    ("lion", dict(lr=1e-3, beta1=0.95, beta2=0.98, weight_decay=0.1)),
    ("lion", dict(lr=1e-3, beta1=0.0, beta2=1.0)),
    ("lion", dict(lr=1e-3, beta1=1.0, beta2=0.0, l1=0.01)),
    ("lion", dict(lr=1e-3, weight_decay=0.5, grad_scale=0.25, maximize=True)),
    ("adamax", dict(lr=2e-3, step=1)),
    ("adamax", dict(lr=1e-2, step=9, beta1=0.8, beta2=0.99, eps=0.0)),
    ("adamax", dict(lr=1e-2, step=3, weight_decay=0.1, l1=0.01, maximize=True)),
    ("adamax", dict(lr=1e-2, step=1000, beta1=0.0, beta2=0.0, eps=1e-3)),
    ("adamax", dict(lr=1e-2, step=2, grad_scale=0.7 / 65536, weight_decay=0.1)),
    ("adadelta", dict(lr=1.0)),
    ("adadelta", dict(lr=0.5, rho=0.95, eps=1e-7)),
    ("adadelta", dict(lr=1.0, rho=1.0)),
    ("adadelta", dict(lr=1.0, rho=0.0)),
    ("adadelta", dict(lr=1.0, rho=0.5, eps=0.0)),
    ("adadelta", dict(lr=0.1, weight_decay=0.1, l1=0.01, maximize=True)),
    ("adadelta", dict(lr=1.0, grad_scale=3.0, maximize=True)),
]


def case_id(case):
    kind, hp = case
    opts = ",".join(f"{k}={v}" for k, v in hp.items() if k != "lr")
    return f"{kind}[{opts}]"


CASE_IDS = [case_id(c) for c in OPTIMIZER_CASES]


def random_problem(rng, kind, hp, shape, dtype, scale=1.0):
    """(params, grads, states) arrays of one shape and dtype."""
    p = randn(rng, shape, dtype, scale)
    g = randn(rng, shape, dtype, scale)
    return p, g, make_states(rng, kind, hp, shape, dtype)


def _huge(kind, dtype):
    """A magnitude whose square (taken by the squaring optimizers) stays finite in dtype."""
    squares = kind not in ("sgd", "sgdm")
    if np.dtype(dtype) == np.float32:
        return 1e18 if squares else 1e30
    return 1e150 if squares else 1e300


def special_problem(rng, kind, hp, dtype, n=64):
    """A random problem with +-0, huge and tiny magnitudes in params and grads, and NaN,
    +inf, -inf gradients. Returns (params, grads, states, indices of non-finite grads)."""
    p, g, states = random_problem(rng, kind, hp, (n,), dtype)
    big, tiny = _huge(kind, dtype), float(np.finfo(dtype).tiny) * 16
    p[0:4] = [0.0, -0.0, 0.0, -0.0]
    g[0:4] = [0.0, 0.0, -0.0, -0.0]
    p[4:8] = [big, -big, big, -big]
    g[4:8] = [big, big, -big, 1.0]
    p[8:12] = [tiny, -tiny, 1.0, -1.0]
    g[8:12] = [tiny, tiny, tiny, -tiny]
    special = [20, 21, 22]
    g[special] = [np.nan, np.inf, -np.inf]
    return p, g, states, special


#: The first six lines the lesson's exponential-decay script printed.
LESSON_LINES = (
    "After 0 epoch,w is 2.600000,loss is 36.000000,lr is 0.200000",
    "After 1 epoch,w is 1.174400,loss is 12.959999,lr is 0.198000",
    "After 2 epoch,w is 0.321948,loss is 4.728015,lr is 0.196020",
    "After 3 epoch,w is -0.191126,loss is 1.747547,lr is 0.194060",
    "After 4 epoch,w is -0.501926,loss is 0.654277,lr is 0.192119",
    "After 5 epoch,w is -0.691392,loss is 0.248077,lr is 0.190198",
)


# --------------------------------------------------------------------------- losses
#
# Each ``expected_*`` returns (loss, grad, loss_tol, grad_tol): the reference's results on
# float64 copies, and tolerances for a kernel computing in ``dtype`` (see src/cpu/loss.cpp:
# per-element terms in the dtype, sums in float64 over fixed chunks).


def _reduce_tolerance(row_tol, rows, reduction, divisor):
    """Tolerance of a reduced loss from its rows' (or elements') tolerances."""
    total = float(np.sum(row_tol)) if np.size(row_tol) else 0.0
    if reduction == "mean":
        return total / divisor if divisor else 0.0
    return total


def expected_mse(pred, target, reduction):
    """Terms (p - t)^2 are formed in the dtype (3 roundings each, all >= 0), summed in float64."""
    dtype = np.dtype(np.asarray(pred).dtype)
    eta = SUBNORMAL_FLOOR[dtype]
    p64, t64 = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    with quiet():
        loss, grad = reference.mse_loss(p64, t64, reduction)
        d2 = (p64 - t64) ** 2
        term_tol = rounding_rtol("mse_term", dtype) * d2 + eta
        grad_tol = rounding_rtol("mse_grad", dtype) * np.abs(grad) + eta
        n = d2.size
        if reduction == "none":
            loss_tol = term_tol
        else:
            loss_tol = (_reduce_tolerance(term_tol, n, reduction, n)
                        + sum_rtol(n) * _reduce_tolerance(d2, n, reduction, n))
    return loss, grad, loss_tol, grad_tol


def expected_cross_entropy(probs, target, reduction):
    dtype = np.asarray(probs).dtype
    p64, t64 = np.asarray(probs, np.float64), np.asarray(target, np.float64)
    eta = SUBNORMAL_FLOOR[np.dtype(dtype)]
    with quiet():
        loss, grad = reference.cross_entropy(p64, t64, reduction)
        terms = np.where(t64 == 0, 0, np.abs(t64 * np.log(p64)))
        term_tol = rounding_rtol("cross_entropy_term", dtype) * terms + eta
        row_abs = np.sum(terms, axis=-1)
        classes = p64.shape[-1] if p64.ndim else 1
        row_tol = np.sum(term_tol, axis=-1) + sum_rtol(classes) * row_abs
        grad_tol = rounding_rtol("cross_entropy_grad", dtype) * np.abs(grad) + eta
        rows = row_abs.size
        if reduction == "none":
            loss_tol = row_tol + rounding_rtol("store_row_loss", dtype) * row_abs
        else:
            loss_tol = (_reduce_tolerance(row_tol, rows, reduction, rows)
                        + sum_rtol(rows) * _reduce_tolerance(row_abs, rows, reduction, rows))
    return loss, grad, loss_tol, grad_tol


def expected_softmax_cross_entropy(logits, target, reduction, ignore_index=None,
                                   label_smoothing=0.0):
    """Reference results and tolerances for softmax cross-entropy.

    Error sources of the kernel (u its unit roundoff): ``z = x - max`` rounded (``e = exp z``
    then carries u*|z| relative) and expf (<= 1 ulp); the float64 row sum of e (relative
    error the softmax-weighted mean of the e's); 1/sum, e*inv, *mass, - t', *scale, each one
    rounding; t' from rounded keep = 1 - eps and smooth = eps/C (and for probability targets
    keep*t + smooth: 3 roundings). The loss (float64 from float32 terms) sees the log of the
    sum's error and, through t', |lse| and |x|.
    """
    dtype = np.asarray(logits).dtype
    u, u64 = unit_roundoff(dtype), UNIT_ROUNDOFF[np.dtype(np.float64)]
    eta = SUBNORMAL_FLOOR[np.dtype(dtype)]
    x = np.asarray(logits, np.float64)
    target = np.asarray(target)
    class_ids = target.dtype.kind in "iu"
    t_in = target if class_ids else np.asarray(target, np.float64)
    with quiet():
        loss, grad = reference.softmax_cross_entropy(x, t_in, reduction, ignore_index,
                                                     label_smoothing)
        n, c = x.shape
        eps = label_smoothing
        z = x - np.max(x, axis=1, keepdims=True) if c else x
        softmax = np.exp(z) / np.sum(np.exp(z), axis=1, keepdims=True)
        lse = np.max(x, axis=1, keepdims=True) + np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        mean_abs_z = np.sum(softmax * np.abs(z), axis=1, keepdims=True)
        if class_ids:
            counted = np.ones(n, bool) if ignore_index is None else target != ignore_index
            labels = np.where(counted, target, 0).astype(np.int64)
            t = (1 - eps) * (np.arange(c) == labels[:, None]) + eps / c
            mass = np.ones((n, 1))
            # keep and smooth rounded: u*(keep*|x_y| + smooth*sum|x|)
            target_err = u * np.sum(t * np.abs(x), axis=1, keepdims=True)
            count = int(np.count_nonzero(counted))
        else:
            counted = np.ones(n, bool)
            t = (1 - eps) * t_in + eps / c
            mass = np.sum(t, axis=1, keepdims=True)
            # each t' = keep*t + smooth rounded three times, times |lse| + |x_c|
            target_err = 3 * u * np.sum(np.abs(t) * (np.abs(lse) + np.abs(x)), axis=1,
                                        keepdims=True)
            count = n
        scale = 1.0 / count if (reduction == "mean" and count) else 1.0
        grad_tol = SAFETY * (u * (scale * (softmax * mass * (10 + np.abs(z) + mean_abs_z)
                                           + 4 * np.abs(t)) + 2 * np.abs(grad))
                             + u64 * c * softmax * mass * scale + eta)
        grad_tol = np.where(counted[:, None], grad_tol, 0.0)
        max_abs_x = np.max(np.abs(x), axis=1, keepdims=True) if c else np.zeros((n, 1))
        # float64: the kernel's and the reference's sums over C classes differ by ~C*u64
        row_tol = SAFETY * (u * (2 + mean_abs_z) + target_err
                            + u64 * c * (1 + 2 * (np.abs(lse) + max_abs_x)))[:, 0]
        row_tol = np.where(counted, row_tol, 0.0)
        if reduction == "none":
            loss_tol = row_tol + rounding_rtol("store_row_loss", dtype) * np.abs(loss)
        else:
            row_abs = np.where(counted, np.abs(np.asarray(
                reference.softmax_cross_entropy(x, t_in, "none", ignore_index,
                                                label_smoothing)[0])), 0.0)
            loss_tol = (_reduce_tolerance(row_tol, n, reduction, count)
                        + sum_rtol(n) * _reduce_tolerance(row_abs, n, reduction, count))
    return loss, grad, loss_tol, grad_tol


# --------------------------------------------------------------------------- activations

FORWARD = ["sigmoid", "tanh", "relu", "leaky_relu"]
BACKWARD = ["sigmoid_backward", "tanh_backward", "relu_backward", "leaky_relu_backward"]

# values every activation meets: signed zeros, the saturation region, huge and subnormal
# magnitudes, infinities, NaN
SPECIAL = [0.0, -0.0, 1.0, -1.0, 100.0, -100.0, 17.0, -17.0, 88.0, -88.0, 104.0, -104.0,
           1e30, -1e30, 1e-40, -1e-40, np.inf, -np.inf, np.nan]


def forward_args(name, x, alpha):
    return (x, alpha) if name == "leaky_relu" else (x,)


def call_reference(name, *args, **kwargs):
    with quiet():
        return getattr(reference, name)(*args, **kwargs)


def assert_forward(name, x, got, alpha=0.01):
    """A forward kernel's result against the reference on the float64 copy of x."""
    ref = call_reference(name, *forward_args(name, x.astype(np.float64), alpha))
    assert got.dtype == x.dtype and got.shape == x.shape
    if name in ("sigmoid", "tanh"):
        assert_ulp(got, ref, f"{name}({x.dtype})")
    elif name == "relu":
        # a select: the exact same bits as the reference (signed zeros, NaN)
        assert_same_bits(got, ref.astype(x.dtype), f"relu({x.dtype})")
    else:
        assert_close(got, ref, elementwise_tolerance(name, x.dtype, ref), f"{name}({x.dtype})")


def ulp_distance(got, ref64):
    """ULPs between got and ref64 rounded to got's dtype; NaN positions must agree."""
    expected = ref64.astype(got.dtype)
    nan = np.isnan(expected)
    assert (np.isnan(got) == nan).all(), "NaN positions differ"
    if nan.all():
        return 0.0
    return float(np.max(np.testing.assert_array_max_ulp(
        got[~nan], expected[~nan], maxulp=np.iinfo(np.int32).max, dtype=got.dtype)))


def assert_ulp(got, ref64, what):
    budget = ULP_BUDGET[got.dtype]
    with quiet():
        ulps = ulp_distance(got, ref64)
    assert ulps <= budget, f"{what}: {ulps:g} ULP from the float64 result, budget {budget}"
    return ulps


def backward_inputs(rng, name, shape, dtype):
    """(a, dy): a is the forward OUTPUT for sigmoid/tanh (their real range), the INPUT for
    relu/leaky_relu (with exact zeros mixed in)."""
    x = randn(rng, shape, np.float64, scale=3.0)
    if name == "sigmoid_backward":
        a = reference.sigmoid(x)
    elif name == "tanh_backward":
        a = np.tanh(x)
    else:
        a = np.where(rng.random(shape) < 0.1, 0.0, x)
    return np.array(a, dtype), randn(rng, shape, dtype)


def assert_backward(name, a, dy, got, alpha=0.01):
    args = (a.astype(np.float64), dy.astype(np.float64))
    if name == "leaky_relu_backward":
        args += (alpha,)
    ref = call_reference(name, *args)
    assert got.dtype == a.dtype and got.shape == a.shape
    if name == "tanh_backward":
        tol = elementwise_tolerance(name, a.dtype, ref, y=args[0], dy=args[1])
    else:
        tol = elementwise_tolerance(name, a.dtype, ref)
    assert_close(got, ref, tol, f"{name}({a.dtype})")


# --------------------------------------------------------------------------- loss checks


def check_loss(result, expected, dtype, reduction, what):
    """(loss, grad) from a kernel against ``expected_*``'s (loss, grad, loss_tol, grad_tol)."""
    loss, grad = result
    ref_loss, ref_grad, loss_tol, grad_tol = expected
    assert isinstance(grad, np.ndarray) and grad.dtype == dtype, f"{what}: grad {grad!r:.80}"
    assert_close(grad, ref_grad, grad_tol, f"{what} grad")
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.dtype == dtype, f"{what}: loss type"
        assert_close(loss, ref_loss, loss_tol, f"{what} loss")
    else:
        assert isinstance(loss, float), f"{what}: loss must be a Python float, got {type(loss)}"
        assert_close(np.float64(loss), ref_loss, loss_tol, f"{what} loss")




# --------------------------------------------------------------------------- protocol stand-ins


class FakeCudaArray:
    """Speaks the CUDA array interface with whatever dict (or non-dict) it is given."""

    def __init__(self, interface):
        self.__cuda_array_interface__ = interface


class FakeDLPack:
    """Claims DLPack with the given __dlpack_device__() answer, and has no capsule."""

    def __init__(self, device):
        self.device = device

    def __dlpack_device__(self):
        return self.device

    def __dlpack__(self, stream=None):
        raise TypeError("no capsule")
