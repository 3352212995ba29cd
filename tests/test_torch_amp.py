"""nnfast.torch with torch.amp.GradScaler against torch's fused optimizers under the same
scaler: training loops with injected inf/NaN gradients, dynamic scale growth and backoff,
step for step (parameters, states, step counts, ``.grad`` after each step, the scale).

The tolerance is test_torch_optim's: the optimizers' own rounding per step. Gradients are
unscaled by 1/S, exact for GradScaler's powers of two, so unscaling adds no difference.
"""

import copy

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: nnfast.torch needs it")
import nnfast.torch as nt  # noqa: E402
from test_torch_optim import OPTIMIZERS, assert_params_close, make_data, make_model  # noqa: E402

STEPS = 30
#: Steps whose gradients get an inf or a NaN (the scaler skips them and backs off).
POISONED = {3: float("inf"), 4: float("nan"), 17: float("-inf")}

#: torch's fused CPU optimizers (torch.amp.GradScaler hands them grad_scale and found_inf),
#: and some that torch has no fused form of (the scaler unscales their gradients first).
CASES = [
    ("Adam", dict(lr=1e-2, fused=True)),
    ("Adam", dict(lr=1e-2, amsgrad=True, weight_decay=0.1, fused=True)),
    ("AdamW", dict(lr=1e-2, fused=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, fused=True)),
    ("SGD", dict(lr=0.05, fused=True)),
    ("Adagrad", dict(lr=0.05, fused=True)),
    ("RMSprop", dict(lr=1e-3, momentum=0.5)),
    ("NAdam", dict(lr=1e-2)),
    ("RAdam", dict(lr=1e-2)),
    ("Adamax", dict(lr=1e-2)),
    ("Adadelta", dict()),
    ("Adafactor", dict(lr=0.05, weight_decay=0.01)),
]
CASE_IDS = [f"{n}-{','.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in CASES]


MAX_NORM = 0.5


def _scaler(cls=torch.amp.GradScaler):
    # a small growth interval so that the loop sees the scale grow as well as back off
    return cls("cpu", init_scale=2.0**16, growth_interval=5)


def _amp_step(model, optimizer, scaler, data, k, unscale_and_clip=False, poison=True):
    """One training step under `scaler` (None: no scaler): backward of the (scaled) loss,
    an inf or NaN gradient on the POISONED steps, torch's unscale_ and clip_grad_norm_ by
    hand with `unscale_and_clip`, then the step."""
    x, y = data
    rows = slice((k * 16) % len(x), (k * 16) % len(x) + 16)
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x[rows]), y[rows])
    (loss if scaler is None else scaler.scale(loss)).backward()
    if poison and k in POISONED:
        next(model.parameters()).grad.view(-1)[5] = POISONED[k]
    if unscale_and_clip:
        if scaler is not None:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
    if scaler is None:
        optimizer.step()
        return
    scaler.step(optimizer)
    scaler.update()


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


def _assert_grads_close(theirs, ours, what):
    for i, (a, b) in enumerate(zip(_grads(theirs), _grads(ours))):
        assert torch.equal(a.isnan(), b.isnan()), f"{what}: NaNs of grad {i}"
        largest = a.nan_to_num(posinf=0.0, neginf=0.0).abs().max()
        close = (torch.isclose(a, b, rtol=1e-4, atol=1e-5 * float(largest))
                 | (a.isnan() & b.isnan()))
        assert bool(close.all()), f"{what}: grad {i} differs from torch's"


@pytest.mark.parametrize("unscale_and_clip", [False, True], ids=["scaler", "unscale_-clip"])
@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_grad_scaler_loop_equal_to_torch(name, kwargs, unscale_and_clip):
    dtype = torch.float32
    theirs = make_model(dtype)
    ours = copy.deepcopy(theirs)
    their_opt = getattr(torch.optim, name)(theirs.parameters(), **kwargs)
    our_opt = getattr(nt, name)(ours.parameters(), **kwargs)
    their_scaler, our_scaler = _scaler(), _scaler()
    data = make_data(dtype)
    scales = set()
    for k in range(STEPS):
        _amp_step(theirs, their_opt, their_scaler, data, k, unscale_and_clip)
        _amp_step(ours, our_opt, our_scaler, data, k, unscale_and_clip)
        what = f"{name}{kwargs} step {k + 1}"
        assert our_scaler.get_scale() == their_scaler.get_scale(), what
        scales.add(our_scaler.get_scale())
        assert_params_close(list(theirs.parameters()), list(ours.parameters()), dtype, k + 1, what)
        # .grad as torch's step leaves it: unscaled, or (a skipped step) still scaled; the
        # scaler unscales the gradients of torch's RMSprop (not fused) even for a step it
        # skips, where nnfast's, as every fused optimizer's, are left scaled
        if k in POISONED and not kwargs.get("fused"):
            continue
        _assert_grads_close(theirs, ours, what)
        for p, q in zip(theirs.parameters(), ours.parameters()):
            st, ours_st = their_opt.state.get(p, {}), our_opt.state.get(q, {})
            if name == "SGD":
                continue  # torch's fused SGD sets its buffer even on a skipped first step
            assert ours_st.keys() == st.keys(), what
            if "step" in st:
                assert ours_st["step"].item() == st["step"].item(), f"{what}: step counts"
    assert len(scales) >= 3, f"the scale should have grown and backed off, saw {sorted(scales)}"
    assert their_scaler.state_dict() == our_scaler.state_dict()


def test_a_skipped_first_step_creates_torch_s_state():
    """torch's fused Adam creates its state (step 0) on a first step the scaler skips."""
    theirs = make_model(torch.float32)
    ours = copy.deepcopy(theirs)
    their_opt = torch.optim.Adam(theirs.parameters(), fused=True)
    our_opt = nt.Adam(ours.parameters())
    for model, opt in ((theirs, their_opt), (ours, our_opt)):
        scaler = _scaler()
        scaler.scale(model(torch.ones(2, 6)).sum()).backward()
        next(model.parameters()).grad.view(-1)[0] = float("inf")
        before = [p.detach().clone() for p in model.parameters()]
        grads = _grads(model)
        scaler.step(opt)
        scaler.update()
        assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
        assert all(torch.equal(a.nan_to_num(), b.nan_to_num()) for a, b in zip(grads, _grads(model)))
    for p, q in zip(theirs.parameters(), ours.parameters()):
        assert our_opt.state[q].keys() == their_opt.state[p].keys()
        assert our_opt.state[q]["step"].item() == their_opt.state[p]["step"].item() == 0
        assert torch.equal(our_opt.state[q]["exp_avg"], their_opt.state[p]["exp_avg"])


def test_optimizers_say_they_take_the_scale():
    for name in OPTIMIZERS:
        assert getattr(nt, name)._step_supports_amp_scaling is True, name


SCALERS = {"torch-scaler": torch.amp.GradScaler, "nnfast-scaler": nt.GradScaler, "no-scaler": None}


@pytest.mark.parametrize("scaler_name", SCALERS)
@pytest.mark.parametrize("name, kwargs", [CASES[0], CASES[3], CASES[6]],
                         ids=[CASE_IDS[0], CASE_IDS[3], CASE_IDS[6]])
def test_max_grad_norm_equal_to_torch_s_clipping(name, kwargs, scaler_name):
    """max_grad_norm folds torch's clip_grad_norm_ into the step: the same parameters,
    step counts, scale and (under a scaler) .grad as torch's unscale_ + clip_grad_norm_ +
    step, with either scaler; last_grad_norm is the norm clip_grad_norm_ returned."""
    cls = SCALERS[scaler_name]
    dtype = torch.float32
    theirs = make_model(dtype)
    ours = copy.deepcopy(theirs)
    their_opt = getattr(torch.optim, name)(theirs.parameters(), **kwargs)
    our_opt = getattr(nt, name)(ours.parameters(), max_grad_norm=MAX_NORM, **kwargs)
    their_scaler = None if cls is None else _scaler()
    our_scaler = None if cls is None else _scaler(cls)
    data = make_data(dtype)
    clipped = 0
    for k in range(STEPS):
        _amp_step(theirs, their_opt, their_scaler, data, k, unscale_and_clip=True,
                  poison=cls is not None)
        _amp_step(ours, our_opt, our_scaler, data, k, poison=cls is not None)
        what = f"{name}{kwargs} {scaler_name} step {k + 1}"
        if cls is not None:
            assert our_scaler.get_scale() == their_scaler.get_scale(), what
        assert_params_close(list(theirs.parameters()), list(ours.parameters()), dtype, k + 1, what)
        if cls is not None and k not in POISONED:
            _assert_grads_close(theirs, ours, what)
        if k not in POISONED or cls is None:
            unscaled = [p.grad for p in theirs.parameters()]
            norm = float(torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in unscaled])))
            clipped += norm > MAX_NORM * (1 - 1e-5)
            assert our_opt.last_grad_norm > 0
    assert clipped >= 5, "the loop should clip (max_grad_norm below the gradients' norm)"
    if cls is not None:
        assert their_scaler.state_dict() == our_scaler.state_dict()


def test_last_grad_norm_is_torch_s_total_norm():
    theirs = make_model(torch.float32)
    ours = copy.deepcopy(theirs)
    our_opt = nt.SGD(ours.parameters(), lr=0.0, max_grad_norm=1e9)
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(1))
    for model in (theirs, ours):
        model(x).square().sum().backward()
    total = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1e9)
    our_opt.step()
    assert our_opt.last_grad_norm == pytest.approx(float(total), rel=1e-6)


def test_nnfast_grad_scaler_runs_other_optimizers_as_torch_s():
    """nnfast.torch.GradScaler with a torch optimizer: torch's step, unchanged."""
    theirs = make_model(torch.float32)
    ours = copy.deepcopy(theirs)
    their_opt = torch.optim.Adam(theirs.parameters(), lr=1e-2)
    our_opt = torch.optim.Adam(ours.parameters(), lr=1e-2)
    their_scaler, our_scaler = _scaler(), _scaler(nt.GradScaler)
    data = make_data(torch.float32)
    for k in range(8):
        _amp_step(theirs, their_opt, their_scaler, data, k)
        _amp_step(ours, our_opt, our_scaler, data, k)
    for a, b in zip(theirs.parameters(), ours.parameters()):
        assert torch.equal(a, b)
    assert their_scaler.state_dict() == our_scaler.state_dict()


def test_max_grad_norm_errors():
    model = make_model(torch.float32)
    with pytest.raises(ValueError, match="max_grad_norm: must be >= 0"):
        nt.Adam(model.parameters(), max_grad_norm=-1.0)
    with pytest.raises(TypeError, match="max_grad_norm"):
        nt.Adam(model.parameters(), max_grad_norm="1")
    optimizer = nt.Adam(model.parameters(), max_grad_norm=1.0)
    model(torch.ones(2, 6)).sum().backward()
    next(model.parameters()).grad.view(-1)[0] = float("nan")
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(RuntimeError, match="max_grad_norm: the norm of the gradients is NaN"):
        optimizer.step()
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert not optimizer.state


def test_max_grad_norm_survives_pickling():
    import pickle

    optimizer = nt.AdamW(make_model(torch.float32).parameters(), max_grad_norm=0.25)
    assert pickle.loads(pickle.dumps(optimizer)).max_grad_norm == 0.25
