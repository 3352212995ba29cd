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
from test_torch_optim import assert_params_close, make_data, make_model  # noqa: E402

STEPS = 30
#: Steps whose gradients get an inf or a NaN (the scaler skips them and backs off).
POISONED = {3: float("inf"), 4: float("nan"), 17: float("-inf")}

#: torch's fused CPU optimizers (torch.amp.GradScaler hands them grad_scale and found_inf),
#: and RMSprop, which torch has no fused form of (the scaler unscales its gradients first).
CASES = [
    ("Adam", dict(lr=1e-2, fused=True)),
    ("Adam", dict(lr=1e-2, amsgrad=True, weight_decay=0.1, fused=True)),
    ("AdamW", dict(lr=1e-2, fused=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, fused=True)),
    ("SGD", dict(lr=0.05, fused=True)),
    ("Adagrad", dict(lr=0.05, fused=True)),
    ("RMSprop", dict(lr=1e-3, momentum=0.5)),
]
CASE_IDS = [f"{n}-{','.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in CASES]


def _scaler():
    # a small growth interval so that the loop sees the scale grow as well as back off
    return torch.amp.GradScaler("cpu", init_scale=2.0**16, growth_interval=5)


def _amp_step(model, optimizer, scaler, data, k, unscale_and_clip=False):
    x, y = data
    rows = slice((k * 16) % len(x), (k * 16) % len(x) + 16)
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x[rows]), y[rows])
    scaler.scale(loss).backward()
    if k in POISONED:
        next(model.parameters()).grad.view(-1)[5] = POISONED[k]
    if unscale_and_clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    scaler.step(optimizer)
    scaler.update()


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


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
        for i, (a, b) in enumerate(zip(_grads(theirs), _grads(ours))):
            assert torch.equal(a.isnan(), b.isnan()), f"{what}: NaNs of grad {i}"
            largest = a.nan_to_num(posinf=0.0, neginf=0.0).abs().max()
            close = (torch.isclose(a, b, rtol=1e-4, atol=1e-5 * float(largest))
                     | (a.isnan() & b.isnan()))
            assert bool(close.all()), f"{what}: grad {i} differs from torch's"
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
    for name in nt.__all__:
        cls = getattr(nt, name)
        if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer):
            assert cls._step_supports_amp_scaling is True, name
