"""nnfast.optim: the stateful optimizers against reference twins (the same classes running
nnfast.reference), torch's semantics hand-checked on tiny cases, lr schedules, state_dict
round trips, skipped parameters, and argument checking.
"""

import pickle

import numpy as np
import pytest

from _helpers import UNIT_ROUNDOFF, assert_same_bits
from nnfast import optim, reference
from nnfast.schedules import ExponentialDecay


def _twin(cls):
    """``cls`` running the NumPy reference instead of the kernels."""
    return type(f"Ref{cls.__name__}", (cls,), {"_ops": reference})


CLASSES = {c.__name__: c for c in (optim.SGD, optim.Adagrad, optim.RMSprop, optim.Adam,
                                   optim.AdamW, optim.NAdam, optim.RAdam, optim.Lion,
                                   optim.Adamax, optim.Adadelta, optim.Adafactor)}

# every main option of each optimizer
CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, maximize=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.5, l1=0.01)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.1, eps=0.0)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.05)),
    ("RMSprop", dict(lr=0.01, maximize=True, eps=1e-6)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=ExponentialDecay(0.05, 5, 0.5))),
    ("SGD", dict(lr=ExponentialDecay(0.1, 3, 0.9, staircase=True), momentum=0.9)),
    ("NAdam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, betas=(0.8, 0.99), momentum_decay=0.01, weight_decay=0.1)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.01)),
    ("RAdam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Lion", dict(lr=1e-3)),
    ("Lion", dict(lr=1e-3, betas=(0.95, 0.98), weight_decay=0.1, maximize=True)),
    ("Adamax", dict(lr=0.01)),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, maximize=True)),
    ("Adadelta", dict(lr=1.0)),
    ("Adadelta", dict(lr=0.5, rho=0.95, eps=1e-7, weight_decay=0.1, maximize=True)),
    ("Adafactor", dict(lr=1e-2)),
    ("Adafactor", dict(lr=0.05, beta2_decay=-0.5, eps=(1e-20, 1e-2), d=1.5, weight_decay=0.1,
                       maximize=True)),
    ("Adamax", dict(lr=ExponentialDecay(0.05, 5, 0.5))),
]
CASE_IDS = [f"{n}-{','.join(f'{k}={v}' for k, v in kw.items() if k != 'lr')}"
            for n, kw in CASES]

SHAPES = [(3, 4), (7,), (), (1, 1, 5)]
STEPS = 35


def _params(rng, dtype):
    return [np.array(rng.standard_normal(s), dtype=dtype) for s in SHAPES]


def _grads(rng, params, step):
    """Gradients for one step; parameter 2 gets None every third step (skipped)."""
    grads = [np.array(rng.standard_normal(p.shape), dtype=p.dtype) for p in params]
    if step % 3 == 1:
        grads[2] = None
    return grads


def _lr_scale(kwargs):
    lr = kwargs["lr"]
    return lr(0) if callable(lr) else lr


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_matches_reference_twin(rng, name, kwargs, dtype):
    """35 steps, compared after every step with the same class running nnfast.reference.
    float64: the two differ only in the order of float64 roundings (a few ulp per step);
    float32: both round in float32, differently ordered (~10 roundings of u32 per step);
    the tolerance is that per-step bound times the steps taken, on the parameters' scale."""
    params = _params(rng, dtype)
    twin_params = [p.copy() for p in params]
    opt = CLASSES[name](params, **kwargs)
    twin = _twin(CLASSES[name])(twin_params, **kwargs)
    per_step = 16 * UNIT_ROUNDOFF[np.dtype(dtype)]
    for k in range(STEPS):
        grads = _grads(rng, params, k)
        assert opt.step(grads) is None
        twin.step([None if g is None else g.copy() for g in grads])
        for i, (p, q) in enumerate(zip(params, twin_params)):
            scale = max(float(np.max(np.abs(q), initial=0.0)), 1.0) + (k + 1) * _lr_scale(kwargs)
            np.testing.assert_allclose(p, q, rtol=0, atol=(k + 1) * per_step * scale,
                                       err_msg=f"{name}{kwargs} param {i} after step {k + 1}")
            assert p.dtype == dtype
    for i in opt.state:
        assert opt.state[i]["step"] == twin.state[i]["step"]
        for key, value in opt.state[i].items():
            if key in CLASSES[name]._scalar_states:  # the same float32 products
                assert_same_bits(value, twin.state[i][key], f"{name} state {i} {key}")
            elif isinstance(value, np.ndarray):
                assert value.dtype == dtype
                ref = twin.state[i][key]
                np.testing.assert_allclose(value, ref, rtol=STEPS * per_step * 4,
                                           atol=STEPS * per_step * np.max(np.abs(ref)),
                                           err_msg=f"{name} state {i} {key}")
    assert opt.steps_taken == STEPS
    assert opt.state[2]["step"] == STEPS - len(range(1, STEPS, 3))


# --------------------------------------------------------------------------- torch semantics


def test_sgd_momentum_first_step_sets_buffer_to_the_gradient():
    """torch: b_1 = g'_1 (no dampening on the first step), then b = mu*b + (1 - damp)*g'."""
    p = np.array([1.0, -2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.1)
    g1, g2 = np.array([1.0, 2.0]), np.array([-3.0, 0.5])
    d1 = g1 + 0.1 * np.array([1.0, -2.0])
    opt.step([g1])
    np.testing.assert_allclose(opt.state[0]["momentum_buffer"], d1, rtol=1e-15)
    np.testing.assert_allclose(p, [1.0, -2.0] - 0.1 * d1, rtol=1e-15)
    p1 = p.copy()
    d2 = g2 + 0.1 * p1
    b2 = 0.9 * d1 + 0.5 * d2
    opt.step([g2])
    np.testing.assert_allclose(opt.state[0]["momentum_buffer"], b2, rtol=1e-15)
    np.testing.assert_allclose(p, p1 - 0.1 * b2, rtol=1e-15)


def test_sgd_nesterov_first_step():
    p = np.array([1.0])
    optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True).step([np.array([2.0])])
    # b = g = 2; d = g + mu*b = 3.8; p = 1 - 0.38
    np.testing.assert_allclose(p, [0.62], rtol=1e-15)


def test_sgd_without_momentum_has_no_state_arrays():
    p = np.array([1.0])
    opt = optim.SGD([p], lr=0.5)
    opt.step([np.array([1.0])])
    assert p[0] == 0.5
    assert set(opt.state[0]) == {"step"}


def test_adagrad_lr_decay_and_initial_accumulator():
    """torch: clr = lr / (1 + (t - 1)*lr_decay); s starts at initial_accumulator_value."""
    p = np.array([1.0])
    opt = optim.Adagrad([p], lr=0.5, lr_decay=0.1, initial_accumulator_value=0.25, eps=0.0)
    s, expected = 0.25, 1.0
    for t, g in enumerate([1.0, -2.0, 0.5], start=1):
        opt.step([np.array([g])])
        s += g * g
        expected -= 0.5 / (1 + (t - 1) * 0.1) * g / np.sqrt(s)
        np.testing.assert_allclose(p, [expected], rtol=1e-14)
        np.testing.assert_allclose(opt.state[0]["sum"], [s], rtol=1e-15)


def test_adagrad_defaults_are_torchs():
    p = np.array([2.0])
    optim.Adagrad([p]).step([np.array([3.0])])  # lr 1e-2, s = 9, eps 1e-10
    np.testing.assert_allclose(p, [2.0 - 1e-2 * 3.0 / (3.0 + 1e-10)], rtol=1e-15)


def test_rmsprop_centered_momentum_first_step():
    p = np.array([1.0])
    opt = optim.RMSprop([p], lr=0.1, alpha=0.9, eps=1e-8, momentum=0.5, centered=True)
    opt.step([np.array([2.0])])
    q, c = 0.1 * 4.0, 0.1 * 2.0
    avg = np.sqrt(q - c * c) + 1e-8
    b = 2.0 / avg
    np.testing.assert_allclose(p, [1.0 - 0.1 * b], rtol=1e-14)
    opt.step([np.array([-1.0])])
    q, c = 0.9 * q + 0.1, 0.9 * c - 0.1
    b = 0.5 * b + -1.0 / (np.sqrt(q - c * c) + 1e-8)
    np.testing.assert_allclose(opt.state[0]["momentum_buffer"], [b], rtol=1e-14)


def test_rmsprop_defaults_are_torchs():
    p = np.array([1.0])
    optim.RMSprop([p]).step([np.array([2.0])])  # lr 1e-2, alpha 0.99, eps 1e-8
    np.testing.assert_allclose(p, [1.0 - 1e-2 * 2.0 / (np.sqrt(0.01 * 4.0) + 1e-8)],
                               rtol=1e-14)


def test_adam_first_steps_by_hand():
    p = np.array([1.0, -1.0])
    opt = optim.Adam([p], lr=0.1)
    g1 = np.array([0.5, 2.0])
    opt.step([g1])
    # step 1: m = 0.1 g, v = 0.001 g^2, p -= lr/0.1 * m/(sqrt(v)/sqrt(0.001) + eps)
    np.testing.assert_allclose(p, [1.0, -1.0] - 0.1 * g1 / (np.abs(g1) + 1e-8), rtol=1e-14)
    p1 = p.copy()
    g2 = np.array([-1.0, 1.0])
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    v = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    opt.step([g2])
    expected = p1 - 0.1 / (1 - 0.9**2) * m / (np.sqrt(v) / np.sqrt(1 - 0.999**2) + 1e-8)
    np.testing.assert_allclose(p, expected, rtol=1e-14)


def test_adamw_defaults_decay_before_the_update():
    p = np.array([2.0])
    optim.AdamW([p], lr=0.1).step([np.array([1.0])])  # weight_decay 1e-2 by default
    np.testing.assert_allclose(p, [2.0 * (1 - 0.1 * 1e-2) - 0.1 * 1.0 / (1.0 + 1e-8)],
                               rtol=1e-15)


def test_amsgrad_keeps_the_max_of_raw_v():
    p = np.array([0.0])
    opt = optim.Adam([p], lr=0.1, amsgrad=True)
    opt.step([np.array([10.0])])
    opt.step([np.array([0.0])])
    v = opt.state[0]["exp_avg_sq"][0]
    assert opt.state[0]["max_exp_avg_sq"][0] == pytest.approx(0.001 * 100.0, rel=1e-15)
    assert v < opt.state[0]["max_exp_avg_sq"][0]


def test_constructor_defaults_match_torch():
    p = [np.zeros(1)]
    assert optim.SGD(p).hyperparameters["lr"] == 1e-3
    assert optim.Adagrad(p).hyperparameters["lr"] == 1e-2
    assert optim.Adagrad(p).hyperparameters["eps"] == 1e-10
    rms = optim.RMSprop(p).hyperparameters
    assert (rms["lr"], rms["alpha"], rms["eps"], rms["momentum"], rms["centered"]) == (
        1e-2, 0.99, 1e-8, 0, False)
    adam = optim.Adam(p).hyperparameters
    assert (adam["lr"], tuple(adam["betas"]), adam["eps"], adam["weight_decay"],
            adam["amsgrad"]) == (1e-3, (0.9, 0.999), 1e-8, 0, False)
    assert optim.AdamW(p).hyperparameters["weight_decay"] == 1e-2
    lion = optim.Lion(p).hyperparameters  # lion-pytorch's
    assert (lion["lr"], lion["betas"], lion["weight_decay"]) == (1e-4, (0.9, 0.99), 0)
    adamax = optim.Adamax(p).hyperparameters
    assert (adamax["lr"], adamax["betas"], adamax["eps"], adamax["weight_decay"]) == (
        2e-3, (0.9, 0.999), 1e-8, 0)
    adadelta = optim.Adadelta(p).hyperparameters
    assert (adadelta["lr"], adadelta["rho"], adadelta["eps"], adadelta["weight_decay"]) == (
        1.0, 0.9, 1e-6, 0)


def test_lion_steps_by_hand():
    """p <- p(1 - lr wd) - lr sign(b1 m + (1 - b1) g); m <- b2 m + (1 - b2) g, sign(0) = 0."""
    p = np.array([1.0, -1.0, 0.5])
    opt = optim.Lion([p], lr=0.1, weight_decay=0.5)
    opt.step([np.array([2.0, -3.0, 0.0])])
    np.testing.assert_array_equal(p, [0.95 - 0.1, -0.95 + 0.1, 0.475])
    np.testing.assert_allclose(opt.state[0]["exp_avg"], [0.02, -0.03, 0.0], rtol=1e-15)
    opt.step([np.array([-0.1, 0.2, 1.0])])
    # c = 0.9 m + 0.1 g = [0.008, -0.007, 0.1]: every sign as m's but the last
    np.testing.assert_allclose(p, np.array([0.85, -0.85, 0.475]) * 0.95 - 0.1 * np.array(
        [1.0, -1.0, 1.0]), rtol=1e-15)
    np.testing.assert_allclose(opt.state[0]["exp_avg"], [0.99 * 0.02 - 0.001,
                                                         -0.99 * 0.03 + 0.002, 0.01], rtol=1e-14)


def test_adamax_first_steps_by_hand():
    p = np.array([1.0, -1.0])
    opt = optim.Adamax([p], lr=0.1, eps=1e-3)
    opt.step([np.array([0.5, -2.0])])
    # m = 0.1 g, u = |g| + eps, p -= lr/0.1 * m/u
    np.testing.assert_allclose(p, [1.0 - 0.1 * 0.5 / 0.501, -1.0 + 0.1 * 2.0 / 2.001],
                               rtol=1e-14)
    p1 = p.copy()
    opt.step([np.array([0.1, 1.0])])
    m = np.array([0.9 * 0.05 + 0.01, 0.9 * -0.2 + 0.1])
    u = np.array([max(0.999 * 0.501, 0.101), max(0.999 * 2.001, 1.001)])
    np.testing.assert_allclose(opt.state[0]["exp_inf"], u, rtol=1e-15)
    np.testing.assert_allclose(p, p1 - 0.1 / (1 - 0.9**2) * m / u, rtol=1e-14)


def test_adadelta_first_steps_by_hand():
    p = np.array([1.0])
    opt = optim.Adadelta([p], lr=0.5, rho=0.9, eps=1e-6)
    v, u, expected = 0.0, 0.0, 1.0
    for g in [2.0, -1.0, 0.5]:
        opt.step([np.array([g])])
        v = 0.9 * v + 0.1 * g * g
        delta = np.sqrt(u + 1e-6) / np.sqrt(v + 1e-6) * g
        u = 0.9 * u + 0.1 * delta * delta
        expected -= 0.5 * delta
        np.testing.assert_allclose(p, [expected], rtol=1e-14)
        np.testing.assert_allclose(opt.state[0]["square_avg"], [v], rtol=1e-15)
        np.testing.assert_allclose(opt.state[0]["acc_delta"], [u], rtol=1e-14)


# --------------------------------------------------------------------------- lr schedules


def test_lr_callable_is_called_with_steps_already_taken():
    seen = []

    def lr(step):
        seen.append(step)
        return 0.1

    p = np.array([1.0])
    opt = optim.SGD([p], lr=lr)
    for _ in range(4):
        opt.step([np.array([1.0])])
    assert seen == [0, 1, 2, 3]
    opt.step([None])  # a step that updates nothing still counts
    opt.step([np.array([1.0])])
    assert seen == [0, 1, 2, 3, 4, 5]


def test_exponential_decay_drives_sgd():
    p = np.array([1.0])
    opt = optim.SGD([p], lr=ExponentialDecay(0.1, 1, 0.5))
    for _ in range(3):
        opt.step([np.array([1.0])])
    np.testing.assert_allclose(p, [1.0 - (0.1 + 0.05 + 0.025)], rtol=1e-15)


def test_negative_lr_from_callable_raises_and_changes_nothing():
    p = np.array([1.0, 2.0])
    opt = optim.Adam([p], lr=lambda step: 0.1 if step == 0 else -0.1)
    opt.step([np.array([1.0, 1.0])])
    before_p, before_state = p.copy(), pickle.loads(pickle.dumps(opt.state))
    with pytest.raises(ValueError, match="lr"):
        opt.step([np.array([1.0, 1.0])])
    assert_same_bits(p, before_p)
    assert opt.state[0]["step"] == before_state[0]["step"] == 1
    assert opt.steps_taken == 1
    for key in ("exp_avg", "exp_avg_sq"):
        assert_same_bits(opt.state[0][key], before_state[0][key])


# --------------------------------------------------------------------------- state_dict


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_state_dict_round_trip_is_exact(rng, name, kwargs, dtype):
    """Save after k steps, pickle, load into a fresh optimizer over copies of the params,
    continue: bit-identical to the uninterrupted run."""
    params = _params(rng, dtype)
    grads = [_grads(rng, params, k) for k in range(20)]
    opt = CLASSES[name](params, **kwargs)
    for g in grads[:7]:
        opt.step(g)
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    resumed_params = [p.copy() for p in params]
    for g in grads[7:]:
        opt.step(g)
    fresh = CLASSES[name](resumed_params, **kwargs)
    fresh.load_state_dict(saved)
    for g in grads[7:]:
        fresh.step(g)
    for p, q in zip(params, resumed_params):
        assert_same_bits(p, q, "resumed run")
    assert fresh.steps_taken == opt.steps_taken
    for i in opt.state:
        for key, value in opt.state[i].items():
            if isinstance(value, np.ndarray):
                assert_same_bits(value, fresh.state[i][key], f"state {i} {key}")
            else:
                assert value == fresh.state[i][key]


def test_state_dict_is_a_snapshot_of_copies(rng):
    params = _params(rng, np.float64)
    opt = optim.Adam(params, lr=0.1)
    opt.step(_grads(rng, params, 0))
    sd = opt.state_dict()
    m_before = opt.state[0]["exp_avg"].copy()
    sd["state"][0]["exp_avg"][...] = 123.0         # editing the snapshot ...
    assert_same_bits(opt.state[0]["exp_avg"], m_before)  # ... leaves the optimizer alone
    opt.load_state_dict(sd)
    sd["state"][0]["exp_avg"][...] = -5.0          # and loading copies in
    assert (opt.state[0]["exp_avg"] == 123.0).all()
    assert isinstance(sd["steps_taken"], int) and isinstance(sd["hyperparameters"], dict)


def test_load_state_dict_rejects_bad_snapshots_and_changes_nothing(rng):
    params = _params(rng, np.float64)
    opt = optim.Adam(params, lr=0.1)
    opt.step(_grads(rng, params, 0))
    good = opt.state_dict()
    bad_shape = pickle.loads(pickle.dumps(good))
    bad_shape["state"][0]["exp_avg"] = np.zeros((2, 2))
    bad_dtype = pickle.loads(pickle.dumps(good))
    bad_dtype["state"][0]["exp_avg"] = good["state"][0]["exp_avg"].astype(np.float32)
    missing = pickle.loads(pickle.dumps(good))
    del missing["state"][0]["exp_avg_sq"]
    bad_index = pickle.loads(pickle.dumps(good))
    bad_index["state"][99] = bad_index["state"][0]
    bad_hp = pickle.loads(pickle.dumps(good))
    bad_hp["hyperparameters"]["lr"] = -1.0
    for bad in (bad_shape, bad_dtype, missing, bad_index, bad_hp, {"state": {}}, "nope"):
        before = opt.state_dict()
        with pytest.raises(ValueError):
            opt.load_state_dict(bad)
        after = opt.state_dict()
        assert after["steps_taken"] == before["steps_taken"]
        assert after["hyperparameters"] == before["hyperparameters"]
        for i in before["state"]:
            for key, value in before["state"][i].items():
                if isinstance(value, np.ndarray):
                    assert_same_bits(after["state"][i][key], value)


# --------------------------------------------------------------------------- skipping


def test_none_grad_skips_a_param_and_its_step_count(rng):
    """A skipped parameter is untouched, gets no state, and its own step count (Adam's
    bias correction) lags: it then moves exactly as if the skipped steps never happened."""
    a, b = np.array([1.0, 2.0]), np.array([3.0])
    opt = optim.Adam([a, b], lr=0.1)
    alone = np.array([3.0])
    opt_alone = optim.Adam([alone], lr=0.1)
    opt.step([np.array([1.0, 1.0]), None])
    assert 1 not in opt.state and b[0] == 3.0
    for g in ([0.5], [-2.0], [1.5]):
        opt.step([np.array([1.0, 1.0]), np.array(g)])
        opt_alone.step([np.array(g)])
    assert_same_bits(b, alone)
    assert opt.state[0]["step"] == 4 and opt.state[1]["step"] == 3


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("cls, kwargs, error, match", [
    (optim.SGD, dict(lr=-1.0), ValueError, "lr"),
    (optim.SGD, dict(momentum=-0.1), ValueError, "momentum"),
    (optim.SGD, dict(nesterov=True), ValueError, "nesterov"),
    (optim.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError, "nesterov"),
    (optim.SGD, dict(weight_decay=-1.0), ValueError, "weight_decay"),
    (optim.Adagrad, dict(lr_decay=-0.1), ValueError, "lr_decay"),
    (optim.Adagrad, dict(initial_accumulator_value=-1.0), ValueError, "initial_accumulator"),
    (optim.Adagrad, dict(eps=-1.0), ValueError, "eps"),
    (optim.RMSprop, dict(alpha=1.5), ValueError, "alpha"),
    (optim.RMSprop, dict(momentum=-1.0), ValueError, "momentum"),
    (optim.Adam, dict(betas=(1.0, 0.999)), ValueError, "betas"),
    (optim.Adam, dict(betas=(0.9, -0.1)), ValueError, "betas"),
    (optim.Adam, dict(betas=(0.9,)), ValueError, "betas"),
    (optim.Adam, dict(eps=-1e-8), ValueError, "eps"),
    (optim.AdamW, dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (optim.Adam, dict(lr="fast"), TypeError, "lr"),
    (optim.Lion, dict(betas=(1.5, 0.99)), ValueError, "betas"),
    (optim.Lion, dict(betas=(0.9,)), ValueError, "betas"),
    (optim.Lion, dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (optim.Adamax, dict(betas=(0.9, 1.0)), ValueError, "betas"),
    (optim.Adamax, dict(eps=-1e-8), ValueError, "eps"),
    (optim.Adadelta, dict(rho=1.1), ValueError, "rho"),
    (optim.Adadelta, dict(eps=-1.0), ValueError, "eps"),
])
def test_constructor_rejects_bad_hyperparameters(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls([np.zeros(2)], **kwargs)


def test_constructor_rejects_bad_params():
    with pytest.raises(ValueError):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD([np.zeros(2, int)], lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD([[0.0, 1.0]], lr=0.1)
    with pytest.raises(ValueError):
        optim.SGD([np.zeros((3, 2)).T], lr=0.1)
    read_only = np.zeros(2)
    read_only.setflags(write=False)
    with pytest.raises(ValueError):
        optim.SGD([read_only], lr=0.1)


def test_step_rejects_bad_grads_and_changes_nothing():
    p = np.array([1.0, 2.0])
    opt = optim.Adam([p], lr=0.1)
    for bad, error in [([], ValueError), ([np.zeros(3)], ValueError),
                       ([np.zeros(2, np.float32)], TypeError), ([[0.0, 0.0]], TypeError)]:
        with pytest.raises(error, match="grads"):
            opt.step(bad)
    assert opt.state == {} and opt.steps_taken == 0
    assert list(p) == [1.0, 2.0]


def test_single_array_params_and_non_contiguous_grads():
    p = np.array([1.0, 2.0])
    opt = optim.SGD(p, lr=0.5)
    opt.step(np.array([[2.0, 9.0], [4.0, 9.0]])[:, 0])
    assert list(p) == [0.0, 0.0]


def test_nadam_keeps_mu_product_as_a_float32_scalar_state():
    """P_t = P_{t-1} * mu_t in float32 (torch's mu_product), saved and refused as state."""
    p = np.ones(3)
    opt = optim.NAdam([p], lr=0.1, momentum_decay=0.01)
    expected = np.float32(1.0)
    for t in (1, 2, 3):
        opt.step([np.full(3, 0.5)])
        expected = expected * np.float32(0.9 * (1 - 0.5 * 0.96 ** (t * 0.01)))
        product = opt.state[0]["mu_product"]
        assert product.shape == () and product.dtype == np.float32
        assert_same_bits(product, np.array(expected))
    saved = opt.state_dict()
    saved["state"][0]["mu_product"] = 0.5
    with pytest.raises(ValueError, match="mu_product"):
        opt.load_state_dict(saved)
    del saved["state"][0]["mu_product"]
    with pytest.raises(ValueError, match="mu_product"):
        opt.load_state_dict(saved)
