"""Bad input raises the right exception, naming the argument, and modifies nothing; the
inputs that only look unusual (non-contiguous or read-only arrays that are only read, NumPy
scalars where only read, empty arrays) are accepted.
"""

import numpy as np
import pytest

import nnfast
from _helpers import (
    OPTIMIZERS,
    assert_same_bits,
    call_step,
    make_states,
    random_problem,
    randn,
    state_names,
)

# every state each step function can take, switched on
FULL_HP = {
    "sgd": dict(lr=0.1),
    "sgdm": dict(lr=0.1, momentum=0.9),
    "adagrad": dict(lr=0.1),
    "rmsprop": dict(lr=0.1, momentum=0.9, centered=True),
    "adam": dict(lr=0.1, step=1, amsgrad=True),
    "adamw": dict(lr=0.1, step=1, amsgrad=True),
    "nadam": dict(lr=0.1, step=1, mu_product=0.45),
    "radam": dict(lr=0.1, step=7),
    "lamb": dict(lr=0.1, step=1),
    "lion": dict(lr=0.1),
    "adamax": dict(lr=0.1, step=1),
    "adadelta": dict(lr=0.1),
}


def _valid_call(rng, kind, n=2, shape=(3,), dtype=np.float32):
    hp = FULL_HP[kind]
    problems = [random_problem(rng, kind, hp, shape, dtype) for _ in range(n)]
    params = [p for p, _, _ in problems]
    grads = [g for _, g, _ in problems]
    states = {name: [st[name] for _, _, st in problems] for name in state_names(kind, hp)}
    return params, grads, states, hp


def _snapshot(*lists):
    return [[np.array(a, copy=True) for a in lst] for lst in lists]


def _assert_unchanged(before, *lists):
    for old_list, new_list in zip(before, lists):
        for old, new in zip(old_list, new_list):
            if isinstance(new, np.ndarray) and new.dtype == old.dtype and new.shape == old.shape:
                assert_same_bits(new, old, "an array was modified by a failing call")


def _operands(kind):
    return ["params", "grads"] + state_names(kind, FULL_HP[kind])


def _written(operand):
    return operand != "grads"


def _non_contiguous(a):
    wide = np.zeros(a.shape + (2,), a.dtype)
    view = wide[..., 0]
    view[...] = a
    assert not view.flags.c_contiguous or view.size <= 1
    return view


def _read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a


# (name, replacement for the second tensor of an operand, exception, which operand named)
CORRUPTIONS = [
    ("int-dtype", lambda a: a.astype(np.int64), TypeError, "self"),
    ("int32-dtype", lambda a: a.astype(np.int32), TypeError, "self"),
    ("float16", lambda a: a.astype(np.float16), TypeError, "self"),
    ("other-float", lambda a: a.astype(np.float64), TypeError, "self"),
    ("byteswapped", lambda a: a.astype(a.dtype.newbyteorder()), TypeError, "self"),
    ("not-an-array", lambda a: a.tolist(), TypeError, "self"),
    ("none", lambda a: None, TypeError, "self"),
    # params' shape is the reference: a wrong params shape is reported at grads
    ("shape", lambda a: np.zeros((4,), a.dtype), ValueError, "grads-if-params"),
    ("rank", lambda a: np.zeros((3, 1), a.dtype), ValueError, "grads-if-params"),
]
WRITE_ONLY_CORRUPTIONS = [
    ("non-contiguous", _non_contiguous, ValueError, "self"),
    ("read-only", _read_only, ValueError, "self"),
    ("numpy-scalar", lambda a: a.dtype.type(1.0), TypeError, "self"),
]


def _call_with(kind, params, grads, states, hp):
    return call_step(nnfast, kind, params, grads, states, hp)


def _cases():
    for kind in OPTIMIZERS:
        for operand in _operands(kind):
            for corruption in CORRUPTIONS + (WRITE_ONLY_CORRUPTIONS if _written(operand) else []):
                yield pytest.param(kind, operand, corruption,
                                   id=f"{kind}-{operand}-{corruption[0]}")


@pytest.mark.parametrize("kind, operand, corruption", list(_cases()))
def test_bad_second_tensor_raises_and_leaves_everything_untouched(rng, kind, operand,
                                                                  corruption):
    name, corrupt, error, named = corruption
    params, grads, states, hp = _valid_call(rng, kind)
    lists = {"params": params, "grads": grads, **states}
    before = _snapshot(params, grads, *states.values())
    lists[operand][1] = corrupt(lists[operand][1])
    expected_name = "grads" if (named == "grads-if-params" and operand == "params") else operand
    with pytest.raises(error, match=rf"^{expected_name}\[1\]"):
        _call_with(kind, params, grads, states, hp)
    # the first tensor (and every other array) is bitwise untouched
    _assert_unchanged(before, params, grads, *states.values())


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_list_length_mismatch(rng, kind):
    for operand in _operands(kind)[1:]:
        params, grads, states, hp = _valid_call(rng, kind, n=3)
        lists = {"params": params, "grads": grads, **states}
        before = _snapshot(params, grads, *states.values())
        lists[operand].pop()
        with pytest.raises(ValueError, match=rf"^{operand}\b"):
            _call_with(kind, params, grads, states, hp)
        _assert_unchanged(before, params, grads, *states.values())


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_params_not_an_array_or_list(rng, kind):
    params, grads, states, hp = _valid_call(rng, kind, n=1)
    with pytest.raises(TypeError, match="^params"):
        _call_with(kind, 1.5, grads, states, hp)
    with pytest.raises(TypeError, match="^grads"):
        _call_with(kind, params, {"a": 1}, states, hp)


# (kind, hyperparameter overrides, exception, the argument the message must name)
BAD_HYPERPARAMETERS = [
    *[(k, dict(lr=-0.1), ValueError, "lr") for k in OPTIMIZERS],
    *[(k, dict(lr=float("nan")), ValueError, "lr") for k in OPTIMIZERS],
    *[(k, dict(lr="0.1"), TypeError, "lr") for k in OPTIMIZERS],
    *[(k, dict(weight_decay=-1e-3), ValueError, "weight_decay") for k in OPTIMIZERS],
    *[(k, dict(l1=-1e-3), ValueError, "l1") for k in OPTIMIZERS if k != "lamb"],  # (no l1)
    *[(k, dict(maximize="yes"), TypeError, "maximize") for k in OPTIMIZERS],
    ("sgdm", dict(momentum=-0.5), ValueError, "momentum"),
    ("sgdm", dict(nesterov=True, dampening=0.5), ValueError, "nesterov"),
    ("sgdm", dict(nesterov=True, momentum=0.0), ValueError, "nesterov"),
    ("adagrad", dict(eps=-1e-10), ValueError, "eps"),
    ("rmsprop", dict(alpha=1.5), ValueError, "alpha"),
    ("rmsprop", dict(alpha=-0.1), ValueError, "alpha"),
    ("rmsprop", dict(eps=-1e-8), ValueError, "eps"),
    ("rmsprop", dict(momentum=-0.9), ValueError, "momentum"),
    ("rmsprop", dict(momentum=0.0), ValueError, "momentum_buffers"),  # buffers given
    ("rmsprop", dict(centered=False), ValueError, "grad_avgs"),       # averages given
    *[(k, dict(step=0), ValueError, "step") for k in ("adam", "adamw")],
    *[(k, dict(step=-3), ValueError, "step") for k in ("adam", "adamw")],
    *[(k, dict(step=1.5), TypeError, "step") for k in ("adam", "adamw")],
    *[(k, dict(step=True), TypeError, "step") for k in ("adam", "adamw")],
    *[(k, dict(beta1=1.0), ValueError, "beta1") for k in ("adam", "adamw")],
    *[(k, dict(beta1=-0.1), ValueError, "beta1") for k in ("adam", "adamw")],
    *[(k, dict(beta2=1.0), ValueError, "beta2") for k in ("adam", "adamw")],
    *[(k, dict(beta2=2.0), ValueError, "beta2") for k in ("adam", "adamw")],
    *[(k, dict(eps=-1e-8), ValueError, "eps") for k in ("adam", "adamw")],
    *[(k, dict(amsgrad=False), ValueError, "max_exp_avg_sqs") for k in ("adam", "adamw")],
    *[(k, dict(step=0), ValueError, "step") for k in ("nadam", "radam")],
    *[(k, dict(step=1.5), TypeError, "step") for k in ("nadam", "radam")],
    *[(k, dict(beta1=1.0), ValueError, "beta1") for k in ("nadam", "radam")],
    *[(k, dict(beta2=-0.5), ValueError, "beta2") for k in ("nadam", "radam")],
    *[(k, dict(eps=-1e-8), ValueError, "eps") for k in ("nadam", "radam")],
    *[(k, dict(weight_decay=-0.1), ValueError, "weight_decay") for k in ("nadam", "radam")],
    ("nadam", dict(momentum_decay=-4e-3), ValueError, "momentum_decay"),
    ("nadam", dict(mu_product=1.0), ValueError, "mu_product"),
    ("nadam", dict(mu_product=-0.1), ValueError, "mu_product"),
    ("nadam", dict(mu_product=float("nan")), ValueError, "mu_product"),
    ("nadam", dict(mu_product="0.5"), TypeError, "mu_product"),
    ("nadam", dict(mu_product=[0.5, 0.5, 0.5]), ValueError, "mu_product"),
    ("nadam", dict(mu_product=[0.5, 1.5]), ValueError, r"mu_product\[1"),
    ("lamb", dict(step=0), ValueError, "step"),
    ("lamb", dict(beta1=1.0), ValueError, "beta1"),
    ("lamb", dict(beta2=-0.5), ValueError, "beta2"),
    ("lamb", dict(eps=-1e-6), ValueError, "eps"),
    ("lamb", dict(weight_decay=-0.01), ValueError, "weight_decay"),
    ("lamb", dict(max_grad_norm=-1.0), ValueError, "max_grad_norm"),
    ("lamb", dict(use_nvlamb=1), TypeError, "use_nvlamb"),
    ("lamb", dict(lr=1e39), ValueError, "lr"),
    ("lion", dict(beta1=1.5), ValueError, "beta1"),
    ("lion", dict(beta2=-0.1), ValueError, "beta2"),
    ("adamax", dict(step=0), ValueError, "step"),
    ("adamax", dict(step=1.5), TypeError, "step"),
    ("adamax", dict(beta1=1.0), ValueError, "beta1"),
    ("adamax", dict(beta2=1.0), ValueError, "beta2"),
    ("adamax", dict(eps=-1e-8), ValueError, "eps"),
    ("adadelta", dict(rho=1.5), ValueError, "rho"),
    ("adadelta", dict(rho=-0.1), ValueError, "rho"),
    ("adadelta", dict(eps=-1e-6), ValueError, "eps"),
]


@pytest.mark.parametrize("kind, overrides, error, name", BAD_HYPERPARAMETERS,
                         ids=[f"{k}-{list(o.items())[0]}" for k, o, _, _ in BAD_HYPERPARAMETERS])
def test_bad_hyperparameter(rng, kind, overrides, error, name):
    params, grads, states, hp = _valid_call(rng, kind)
    before = _snapshot(params, grads, *states.values())
    with pytest.raises(error, match=rf"^{name}\b"):
        _call_with(kind, params, grads, states, dict(hp, **overrides))
    _assert_unchanged(before, params, grads, *states.values())


@pytest.mark.parametrize("kind, missing", [("rmsprop", "momentum_buffers"),
                                           ("rmsprop", "grad_avgs"),
                                           ("adam", "max_exp_avg_sqs"),
                                           ("adamw", "max_exp_avg_sqs")])
def test_missing_required_state(rng, kind, missing):
    params, grads, states, hp = _valid_call(rng, kind)
    del states[missing]
    before = _snapshot(params, grads, *states.values())
    with pytest.raises(ValueError, match=rf"^{missing}\b"):
        _call_with(kind, params, grads, states, hp)
    _assert_unchanged(before, params, grads, *states.values())


# --------------------------------------------------------------------------- accepted


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_non_contiguous_and_read_only_grads_are_accepted(rng, kind):
    params, grads, states, hp = _valid_call(rng, kind, shape=(4, 6), dtype=np.float64)
    copies = _snapshot(params, *states.values())
    _call_with(kind, params, grads, states, hp)
    strided = [np.asfortranarray(g) for g in grads]       # F-order: not C-contiguous
    wide = np.zeros((4, 12))
    wide[:, ::2] = grads[1]
    strided[1] = wide[:, ::2]                             # every other column: strided
    strided[1].setflags(write=False)                      # and read-only
    assert not strided[0].flags.c_contiguous and not strided[1].flags.c_contiguous
    assert not strided[1].flags.writeable
    p2, *s2 = copies
    states2 = dict(zip(states, s2))
    _call_with(kind, p2, strided, states2, hp)
    for a, b in zip(params + [x for v in states.values() for x in v],
                    p2 + [x for v in states2.values() for x in v]):
        assert_same_bits(a, b, "non-contiguous/read-only grads give the contiguous result")


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_numpy_scalar_grad_is_accepted_for_a_0d_param(rng, kind):
    params, grads, states, hp = _valid_call(rng, kind, n=1, shape=(), dtype=np.float64)
    copies = _snapshot(params, *states.values())
    _call_with(kind, params, grads, states, hp)
    p2, *s2 = copies
    _call_with(kind, p2, [grads[0][()]], dict(zip(states, s2)), hp)
    assert isinstance(grads[0][()], np.float64)
    assert_same_bits(params[0], p2[0])


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_numpy_scalar_param_is_rejected(rng, kind):
    params, grads, states, hp = _valid_call(rng, kind, n=1, shape=(), dtype=np.float64)
    with pytest.raises(TypeError, match=r"^params\[0\]"):
        _call_with(kind, params[0][()], grads, states, hp)


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_empty_arrays_in_a_list_are_noops(rng, kind):
    hp = FULL_HP[kind]
    p = [np.empty((0,), np.float32), randn(rng, (5,), np.float32), np.empty((2, 0), np.float32)]
    g = [np.empty_like(a) for a in p]
    g[1] = randn(rng, (5,), np.float32)
    states = {n: [np.abs(randn(rng, a.shape, np.float32)) for a in p]
              for n in state_names(kind, hp)}
    ref_p, ref_g = p[1].copy(), g[1]
    ref_states = {n: v[1].copy() for n, v in states.items()}
    _call_with(kind, p, g, states, hp)
    _call_with(kind, ref_p, ref_g, ref_states, hp)
    assert_same_bits(p[1], ref_p)
    assert p[0].shape == (0,) and p[2].shape == (2, 0)


# --------------------------------------------------------------------------- activations

FORWARD = ["sigmoid", "tanh", "relu", "leaky_relu"]
BACKWARD = {"sigmoid_backward": "y", "tanh_backward": "y", "relu_backward": "x",
            "leaky_relu_backward": "x"}


@pytest.mark.parametrize("name", FORWARD)
def test_activation_bad_input(name):
    fn = getattr(nnfast, name)
    with pytest.raises(TypeError, match="^x"):
        fn([0.5, 1.0])
    with pytest.raises(TypeError, match="^x"):
        fn(np.arange(3))
    with pytest.raises(TypeError, match="^x"):
        fn(np.ones(3, np.int16))  # a dtype of nnfast's, but not a floating one
    x = np.ones(5, np.float32)
    cases = [
        (np.full(5, 7.0, np.float64), TypeError),       # dtype differs from x
        (np.full(4, 7.0, np.float32), ValueError),      # shape
        (np.full((5, 1), 7.0, np.float32), ValueError),  # rank
        (_non_contiguous(np.full(5, 7.0, np.float32)), ValueError),
        (_read_only(np.full(5, 7.0, np.float32)), ValueError),
    ]
    for out, error in cases:
        before = out.copy()
        with pytest.raises(error, match="^out"):
            fn(x, out=out)
        assert_same_bits(out, before, "a rejected out= must not be written")
    with pytest.raises(TypeError, match="^out"):
        fn(x, out=[0.0] * 5)


@pytest.mark.parametrize("name", FORWARD)
def test_activation_accepts_non_contiguous_read_only_input(rng, name):
    x = randn(rng, (6, 8), np.float64)
    view = _read_only(np.asfortranarray(x))
    assert_same_bits(getattr(nnfast, name)(view), getattr(nnfast, name)(x))
    strided = randn(rng, (12, 8), np.float64)[::2]
    assert_same_bits(getattr(nnfast, name)(strided),
                     getattr(nnfast, name)(np.ascontiguousarray(strided)))


@pytest.mark.parametrize("name", FORWARD)
def test_activation_accepts_numpy_scalar(name):
    got = getattr(nnfast, name)(np.float32(0.5))
    assert_same_bits(got, getattr(nnfast, name)(np.array(0.5, np.float32)))


@pytest.mark.parametrize("name", sorted(BACKWARD))
def test_activation_backward_bad_input(name):
    fn, first = getattr(nnfast, name), BACKWARD[name]
    a = np.full(4, 0.5, np.float32)
    with pytest.raises(TypeError, match=f"^{first}"):
        fn(np.arange(4), a)
    with pytest.raises(TypeError, match="^dy"):
        fn(a, np.arange(4))
    with pytest.raises(TypeError, match="^dy"):
        fn(a, a.astype(np.float64))
    with pytest.raises(ValueError, match="^dy"):
        fn(a, np.ones(5, np.float32))
    with pytest.raises(TypeError, match="^dy"):
        fn(a, [1.0] * 4)
    for out, error in [(np.zeros(4, np.float64), TypeError), (np.zeros(3, np.float32), ValueError),
                       (_read_only(np.zeros(4, np.float32)), ValueError)]:
        before = out.copy()
        with pytest.raises(error, match="^out"):
            fn(a, a, out=out)
        assert_same_bits(out, before)
    dy = np.ones(4, np.float32)
    assert_same_bits(fn(a[::-1], dy[::-1]), fn(a.copy(), dy.copy()))


@pytest.mark.parametrize("name", ["leaky_relu", "leaky_relu_backward"])
def test_alpha_must_be_real(name):
    x = np.ones(3)
    args = (x,) if name == "leaky_relu" else (x, x)
    with pytest.raises(TypeError, match="^alpha"):
        getattr(nnfast, name)(*args, alpha="0.1")
    with pytest.raises(ValueError, match="^alpha"):
        getattr(nnfast, name)(*args, alpha=float("nan"))


# --------------------------------------------------------------------------- losses


@pytest.mark.parametrize("reduction", ["avg", "MEAN", None, 1, ""])
def test_bad_reduction(reduction):
    x = np.ones((2, 3))
    calls = [
        lambda: nnfast.mse_loss(x, x, reduction),
        lambda: nnfast.cross_entropy(x / 3, x / 3, reduction),
        lambda: nnfast.softmax_cross_entropy(x, np.array([0, 1]), reduction),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="^reduction"):
            call()


def test_loss_bad_arrays():
    f32, f64 = np.ones((2, 3), np.float32), np.ones((2, 3), np.float64)
    cases = [
        (lambda: nnfast.mse_loss(f32, f64), TypeError, "target"),
        (lambda: nnfast.mse_loss(np.ones((2, 3), int), f32), TypeError, "pred"),
        (lambda: nnfast.mse_loss(f32.tolist(), f32), TypeError, "pred"),
        (lambda: nnfast.mse_loss(f32, np.ones((3, 2), np.float32)), ValueError, "target"),
        (lambda: nnfast.cross_entropy(f32, f64), TypeError, "target"),
        (lambda: nnfast.cross_entropy(f32, np.ones(3, np.float32)), ValueError, "target"),
        (lambda: nnfast.cross_entropy(np.float32(0.5), np.float32(1.0)), ValueError, "probs"),
        (lambda: nnfast.softmax_cross_entropy(np.ones(3), np.array([0])), ValueError, "logits"),
        (lambda: nnfast.softmax_cross_entropy(np.ones((2, 3, 1)), np.array([0, 0])),
         ValueError, "logits"),
        (lambda: nnfast.softmax_cross_entropy(np.ones((2, 0)), np.array([0, 0])),
         ValueError, "logits"),
        (lambda: nnfast.softmax_cross_entropy(f64, np.array([0, 3])), ValueError, "target"),
        (lambda: nnfast.softmax_cross_entropy(f64, np.array([-1, 0])), ValueError, "target"),
        (lambda: nnfast.softmax_cross_entropy(f64, np.array([0, 1, 2])), ValueError, "target"),
        (lambda: nnfast.softmax_cross_entropy(f64, np.array([[0], [1]])), ValueError, "target"),
        (lambda: nnfast.softmax_cross_entropy(f64, [0, 1]), TypeError, "target"),
        (lambda: nnfast.softmax_cross_entropy(f64, np.array([True, False])), TypeError, "target"),
        (lambda: nnfast.softmax_cross_entropy(f64, f32), TypeError, "target"),
        (lambda: nnfast.softmax_cross_entropy(f64, np.ones((2, 4))), ValueError, "target"),
        (lambda: nnfast.softmax_cross_entropy(f64, f64 / 3, ignore_index=0),
         ValueError, "ignore_index"),
        (lambda: nnfast.softmax_cross_entropy(f64, np.array([0, 1]), ignore_index=1.0),
         TypeError, "ignore_index"),
        (lambda: nnfast.softmax_cross_entropy(f64, np.array([0, 1]), label_smoothing=1.5),
         ValueError, "label_smoothing"),
        (lambda: nnfast.softmax_cross_entropy(f64, np.array([0, 1]), label_smoothing=-0.1),
         ValueError, "label_smoothing"),
        (lambda: nnfast.l1_loss(3.0), TypeError, "w"),
        (lambda: nnfast.l2_loss([f32, np.ones(3, int)]), TypeError, r"w\[1\]"),
        (lambda: nnfast.l2_loss([f32, f64]), TypeError, r"w\[1\]"),
        (lambda: nnfast.l1_loss([f32, "x"]), TypeError, r"w\[1\]"),
    ]
    for call, error, name in cases:
        with pytest.raises(error, match=f"^{name}"):
            call()


def test_ignored_rows_may_hold_out_of_range_labels():
    loss, _ = nnfast.softmax_cross_entropy(np.zeros((2, 3)), np.array([-100, 1]),
                                           ignore_index=-100)
    np.testing.assert_allclose(loss, np.log(3), rtol=1e-15)


@pytest.mark.parametrize("name", ["mse_loss", "cross_entropy", "softmax_cross_entropy"])
def test_loss_bad_grad_out_raises_and_writes_nothing(name):
    x = np.full((2, 3), 0.25)
    second = np.array([0, 1]) if name == "softmax_cross_entropy" else x
    fn = getattr(nnfast, name)
    cases = [(np.full((2, 3), 9.0, np.float32), TypeError),
             (np.full((3, 2), 9.0), ValueError),
             (np.full(6, 9.0), ValueError),
             (_read_only(np.full((2, 3), 9.0)), ValueError),
             (np.asfortranarray(np.full((2, 3), 9.0)), ValueError)]
    for out, error in cases:
        before = out.copy()
        with pytest.raises(error, match="^grad_out"):
            fn(x, second, grad_out=out)
        assert_same_bits(out, before)
    # a bad target is reported before grad_out is touched
    out = np.full((2, 3), 9.0)
    bad = np.array([0, 7]) if name == "softmax_cross_entropy" else np.ones((2, 4))
    with pytest.raises(ValueError, match="^target"):
        fn(x, bad, grad_out=out)
    assert (out == 9.0).all()


def test_loss_non_contiguous_inputs_accepted(rng):
    x = randn(rng, (10, 8), np.float32)[:, ::2]
    t = randn(rng, (5, 8), np.float32).T[:4].T  # (5, 4), non-contiguous
    labels = np.arange(20)[::4] % 4
    for args, fn in [((x[:5], t), nnfast.mse_loss),
                     ((np.abs(x[:5]), np.abs(t)), nnfast.cross_entropy),
                     ((x[:5], labels), nnfast.softmax_cross_entropy),
                     ((x[:5], np.abs(t)), nnfast.softmax_cross_entropy)]:
        contiguous = [np.ascontiguousarray(a) for a in args]
        for reduction in ("mean", "none"):
            a, b = fn(*args, reduction), fn(*contiguous, reduction)
            assert_same_bits(np.asarray(a[0]), np.asarray(b[0]))
            assert_same_bits(a[1], b[1])


def test_losses_accept_numpy_scalars():
    loss, grad = nnfast.mse_loss(np.float64(3.0), np.float64(1.0))
    assert loss == 4.0 and grad == 4.0
    assert nnfast.l1_loss(np.float32(-2.0)) == 2.0


def test_empty_loss_inputs():
    e = np.empty((0, 3))
    assert np.isnan(nnfast.mse_loss(e, e)[0])
    assert nnfast.mse_loss(e, e, "sum")[0] == 0.0
    assert nnfast.mse_loss(e, e, "none")[0].shape == (0, 3)
    assert np.isnan(nnfast.cross_entropy(e, e)[0])
    assert nnfast.cross_entropy(e, e, "none")[0].shape == (0,)
    loss, grad = nnfast.softmax_cross_entropy(e, np.empty(0, np.int64), "sum")
    assert loss == 0.0 and grad.shape == (0, 3)
    assert np.isnan(nnfast.softmax_cross_entropy(e, np.empty(0, np.int64))[0])
    assert nnfast.l2_loss([e, np.empty(0)]) == 0.0


# --------------------------------------------------------------------------- complexity


@pytest.mark.parametrize("sizes, error, name", [
    ([3], ValueError, "layer_sizes"),
    ([], ValueError, "layer_sizes"),
    ([3, 0, 2], ValueError, r"layer_sizes\[1\]"),
    ([3, -4], ValueError, r"layer_sizes\[1\]"),
    ([3, 4.0], TypeError, r"layer_sizes\[1\]"),
    ([3, True], TypeError, r"layer_sizes\[1\]"),
    (5, TypeError, "layer_sizes"),
])
def test_complexity_bad_sizes(sizes, error, name):
    with pytest.raises(error, match=f"^{name}"):
        nnfast.complexity(sizes)


def test_make_states_are_valid_for_every_optimizer(rng):
    """Guard for the helpers: states drawn for the tests satisfy each optimizer's domain."""
    for kind, hp in FULL_HP.items():
        st = make_states(rng, kind, hp, (100,), np.float64)
        if "grad_avgs" in st:
            assert (st["square_avgs"] > st["grad_avgs"] ** 2).all()
        for name in ("sums", "exp_avg_sqs", "max_exp_avg_sqs", "exp_infs", "square_avgs",
                     "acc_deltas"):
            if name in st:
                assert (st[name] >= 0).all()



# --------------------------------------------------------------------------- found in review


@pytest.mark.parametrize("call", [
    lambda p, g: nnfast.sgd_step(None, g, lr=0.1),
    lambda p, g: nnfast.sgd_step(p, None, lr=0.1),
    lambda p, g: nnfast.adam_step(p, g, None, None, step=1),
    lambda p, g: nnfast.adagrad_step(p, g, None, lr=0.1),
    lambda p, g: nnfast.sgdm_step(p, g, None, lr=0.1),
    lambda p, g: nnfast.rmsprop_step(p, g, None, lr=0.1),
    lambda p, g: nnfast.l1_loss(None),
], ids=["params", "grads", "exp_avgs", "sums", "momentum_buffers", "square_avgs", "w"])
def test_none_for_a_required_array_is_a_type_error(call):
    p = np.ones(5, np.float32)
    g = np.full(5, 0.5, np.float32)
    before = p.copy()
    with pytest.raises(TypeError, match="got NoneType"):
        call(p, g)
    np.testing.assert_array_equal(p, before)


def test_an_updated_array_may_not_share_memory_with_another():
    p = np.ones(8, np.float32)
    g = np.full(8, 0.5, np.float32)
    m = np.zeros(8, np.float32)
    before = p.copy()
    with pytest.raises(ValueError, match=r"params\[1\]: shares memory with params\[0\]"):
        nnfast.sgd_step([p, p], [g, g], lr=1.0)
    with pytest.raises(ValueError, match=r"exp_avg_sqs\[0\]: shares memory with exp_avgs\[0\]"):
        nnfast.adam_step(p, g, m, m, step=1)
    with pytest.raises(ValueError, match="shares memory"):
        nnfast.sgd_step([p[:5], p[4:]], [g[:5], g[4:]], lr=1.0)
    np.testing.assert_array_equal(p, before)
    # read-only operands may share memory: one gradient for two parameters
    q = np.ones(8, np.float32)
    nnfast.sgd_step([p, q], [g, g], lr=1.0)
    np.testing.assert_array_equal(p, q)


def test_first_momentum_step_ignores_what_the_buffer_held():
    """PyTorch's first SGD-momentum step sets the buffer to g', whatever it held."""
    p = np.ones(3, np.float32)
    g = np.full(3, 0.5, np.float32)
    b = np.array([np.inf, np.nan, 1.0], np.float32)
    nnfast.sgdm_step(p, g, b, lr=0.1, momentum=0.9, first_step=True)
    np.testing.assert_array_equal(b, g)
    np.testing.assert_allclose(p, 1.0 - 0.1 * 0.5, rtol=1e-7)


def test_integers_too_large_for_64_bits_name_the_argument():
    p, g, m, v = (np.ones(3, np.float32) for _ in range(4))
    with pytest.raises(ValueError, match="step: must be <= 9223372036854775807, got 1180591620717411303424"):
        nnfast.adam_step(p, g, m, v, step=2**70)
    with pytest.raises(ValueError, match="ignore_index: .* does not fit in 64 bits"):
        nnfast.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), ignore_index=2**70)


def test_uint64_class_ids_past_int64_do_not_wrap():
    labels = np.array([0, 2**64 - 1], np.uint64)
    with pytest.raises(ValueError, match="target: .*uint64"):
        nnfast.softmax_cross_entropy(np.zeros((2, 3)), labels, ignore_index=-1)


def test_misaligned_arrays_are_copied_when_read_and_refused_when_written():
    buffer = bytearray(8 * 9 + 1)
    misaligned = np.frombuffer(buffer, np.float64, count=9, offset=1)
    assert not misaligned.flags.aligned
    misaligned[...] = np.linspace(-2, 2, 9)
    np.testing.assert_array_equal(nnfast.relu(misaligned), np.maximum(misaligned, 0))
    with pytest.raises(ValueError, match="aligned"):
        nnfast.relu(np.ones(9), out=misaligned)


@pytest.mark.skipif(nnfast.cuda.is_built(),
                    reason="the CUDA module is built here: tests/test_cuda.py covers GPU arrays")
def test_gpu_array_without_the_cuda_module_is_a_clear_error():
    class GpuArray:
        __cuda_array_interface__ = {"shape": (3,), "typestr": "<f4", "data": (0, False),
                                    "version": 3}

    with pytest.raises(RuntimeError, match=r"built without CUDA .*NNFAST_CUDA=ON"):
        nnfast.relu(GpuArray())
