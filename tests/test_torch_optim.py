"""nnfast.torch against torch.optim: training loops, schedulers, checkpoints both ways,
param groups, memory, and bad input (skipped where torch is not installed).

Tolerance. Both optimizers see the same gradients while their parameters agree, so the
parameters drift apart only by the optimizers' own rounding: torch orders some operations
differently (Adam's lerp, addcdiv), a few unit roundoffs per step. After step k the test
allows ``k * PER_STEP * (|p| + 1)`` with ``PER_STEP = 32 u`` of the dtype (u = 2**-24 for
float32, 2**-53 for float64): the worst measured over these cases and six seeds was 9.5 u per
step (Adagrad with maximize and weight decay, float64), most are under 1 u. A wrong formula
(a missing bias correction, a decay applied twice) moves a parameter by ~lr per step, many
orders of magnitude more.
"""

import copy
import io
import pickle

import numpy as np
import pytest

from _helpers import UNIT_ROUNDOFF

torch = pytest.importorskip("torch", reason="torch is not installed: nnfast.torch needs it "
                                            "(pip install \"nnfast[torch]\")")
import nnfast.torch as nt  # noqa: E402  (after the importorskip)

#: The optimizer classes of nnfast.torch (its __all__ also names GradScaler and functions).
OPTIMIZERS = [n for n in nt.__all__
              if isinstance(getattr(nt, n), type) and issubclass(getattr(nt, n), nt._KernelOptimizer)]
STEPS = 100
DTYPES = [torch.float32, torch.float64]
UNIT = {torch.float32: UNIT_ROUNDOFF[np.dtype(np.float32)],
        torch.float64: UNIT_ROUNDOFF[np.dtype(np.float64)]}
PER_STEP = 32

# Each optimizer with its main options (torch's defaults where no value is given). The
# learning rates keep this small model's training well-conditioned: RMSprop at torch's default
# lr 1e-2, say, takes first steps ~lr long whatever the gradient and makes the trajectory
# chaotic, so that a difference of one rounding grows by orders of magnitude in 100 steps;
# SGD maximizing the loss at lr 0.05 overflows before step 100.
CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.01, momentum=0.5, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1)),
    ("Adagrad", dict(lr=0.05, weight_decay=0.1, eps=1e-6, maximize=True)),
    ("RMSprop", dict(lr=1e-3)),
    ("RMSprop", dict(lr=1e-3, alpha=0.9, centered=True)),
    ("RMSprop", dict(lr=1e-3, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=1e-3, momentum=0.5, centered=True, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=1e-2, amsgrad=True)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, maximize=True)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("NAdam", dict()),
    ("NAdam", dict(lr=1e-2, weight_decay=0.1)),
    ("NAdam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, momentum_decay=1e-2, maximize=True)),
    ("NAdam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict()),
    ("RAdam", dict(lr=1e-2, weight_decay=0.1)),
    ("RAdam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, maximize=True)),
    ("RAdam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)),
    ("Adamax", dict()),
    ("Adamax", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.95, eps=1e-7, weight_decay=0.1, maximize=True)),
    ("Adafactor", dict()),
    ("Adafactor", dict(lr=0.05, beta2_decay=-0.5, eps=(1e-20, 1e-2), d=1.5, weight_decay=0.1,
                       maximize=True)),
]
CASE_IDS = [f"{name}-{','.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}"
            for name, kw in CASES]


# --------------------------------------------------------------------------- helpers


def make_model(dtype, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16),
                               torch.nn.Tanh(), torch.nn.Linear(16, 3)).to(dtype)


def make_data(dtype, seed=0, rows=64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, 6, generator=g, dtype=dtype), torch.randn(rows, 3, generator=g,
                                                                       dtype=dtype)


def train_step(model, optimizer, data, k, batch=16):
    """One minibatch step (minibatch k of the data, cycling); returns the loss."""
    x, y = data
    rows = slice((k * batch) % len(x), (k * batch) % len(x) + batch)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x[rows]), y[rows])
        loss.backward()
        return loss
    return optimizer.step(closure)


def assert_params_close(expected, got, dtype, steps, what, per_step=PER_STEP):
    """|got - expected| <= steps * per_step * u * (|expected| + 1), parameter by parameter."""
    bound = steps * per_step * UNIT[dtype]
    for i, (e, g) in enumerate(zip(expected, got)):
        e, g = e.detach(), g.detach()
        excess = ((g - e).abs() - bound * (e.abs() + 1)).max().item()
        assert excess <= 0, (f"{what}: parameter {i} differs from torch by more than "
                             f"{bound:.3g} x (|p| + 1) after {steps} steps "
                             f"(max |diff| {(g - e).abs().max().item():.3g})")


def twins(name, kwargs, dtype, seed=0):
    """The same model twice: one with torch.optim.<name>, one with nnfast.torch.<name>."""
    theirs = make_model(dtype, seed)
    ours = copy.deepcopy(theirs)
    return (theirs, getattr(torch.optim, name)(theirs.parameters(), **kwargs),
            ours, getattr(nt, name)(ours.parameters(), **kwargs))


# --------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_training_loop_equal_to_torch(name, kwargs, dtype):
    theirs, their_opt, ours, our_opt = twins(name, kwargs, dtype)
    data = make_data(dtype)
    for k in range(STEPS):
        their_loss = train_step(theirs, their_opt, data, k)
        our_loss = train_step(ours, our_opt, data, k)
        assert_params_close(list(theirs.parameters()), list(ours.parameters()), dtype, k + 1,
                            f"{name}{kwargs} step {k + 1}")
    assert torch.isfinite(our_loss) and torch.isfinite(their_loss)
    # The state torch would hold: same keys, same step counts (a checkpoint's contents).
    theirs_sd, ours_sd = their_opt.state_dict(), our_opt.state_dict()
    assert ours_sd["param_groups"] == theirs_sd["param_groups"]
    assert ours_sd["state"].keys() == theirs_sd["state"].keys()
    for i, st in theirs_sd["state"].items():
        assert ours_sd["state"][i].keys() == st.keys()
        if "step" in st:
            assert ours_sd["state"][i]["step"].dtype == st["step"].dtype
            assert ours_sd["state"][i]["step"].device == st["step"].device
            assert ours_sd["state"][i]["step"].item() == st["step"].item() == STEPS


#: NAdam's and RAdam's kernels round in torch's order but for the moments (torch's lerp) and
#: RAdam's folded coefficient: over 50 steps of the cases above the worst measured drift was
#: 1.2 u per step (NAdam, betas (0.8, 0.99), float64), 0.22 u in float32; the bound is 4 u.
TIGHT_PER_STEP = 4
TIGHT_CASES = [(i, c) for i, c in enumerate(CASES) if c[0] in ("NAdam", "RAdam")]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name, kwargs", [c for _, c in TIGHT_CASES],
                         ids=[CASE_IDS[i] for i, _ in TIGHT_CASES])
def test_nadam_radam_within_four_units_per_step_of_torch(name, kwargs, dtype):
    theirs, their_opt, ours, our_opt = twins(name, kwargs, dtype)
    data = make_data(dtype)
    for k in range(50):
        train_step(theirs, their_opt, data, k)
        train_step(ours, our_opt, data, k)
        assert_params_close(list(theirs.parameters()), list(ours.parameters()), dtype, k + 1,
                            f"{name}{kwargs} step {k + 1}", per_step=TIGHT_PER_STEP)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_nadam_mu_product_equals_torchs_bit_for_bit(dtype):
    """mu_product is multiplied as torch multiplies it (a float32 scalar tensor), so after 300
    steps it holds torch's bits, and the parameters still agree within the per-step bound."""
    theirs, their_opt, ours, our_opt = twins("NAdam", dict(lr=1e-3, momentum_decay=0.01), dtype)
    data = make_data(dtype)
    for k in range(300):
        train_step(theirs, their_opt, data, k)
        train_step(ours, our_opt, data, k)
    for p, q in zip(theirs.parameters(), ours.parameters()):
        theirs_product, ours_product = their_opt.state[p]["mu_product"], our_opt.state[q]["mu_product"]
        assert ours_product.dtype == theirs_product.dtype == torch.float32
        assert ours_product.item() == theirs_product.item()
    assert_params_close(list(theirs.parameters()), list(ours.parameters()), dtype, 300, "NAdam")


def test_nadam_mu_product_follows_torchs_default_dtype():
    """Under a float64 default dtype torch keeps mu_product (and step) in float64: so does
    nnfast.torch.NAdam, with the same bits."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        theirs, their_opt, ours, our_opt = twins("NAdam", dict(lr=1e-2), torch.float32)
        data = make_data(torch.float32)
        for k in range(20):
            train_step(theirs, their_opt, data, k)
            train_step(ours, our_opt, data, k)
    finally:
        torch.set_default_dtype(before)
    for p, q in zip(theirs.parameters(), ours.parameters()):
        theirs_product, ours_product = their_opt.state[p]["mu_product"], our_opt.state[q]["mu_product"]
        assert ours_product.dtype == theirs_product.dtype == torch.float64
        assert ours_product.item() == theirs_product.item()


def test_nadam_checkpoint_with_plain_number_states_resumes_as_torch():
    """An older checkpoint keeps step and mu_product as Python numbers; torch.optim.NAdam
    turns them into tensors on loading, and so does nnfast.torch.NAdam."""
    model = make_model(torch.float64)
    optimizer = torch.optim.NAdam(model.parameters(), lr=1e-2)
    data = make_data(torch.float64)
    for k in range(5):
        train_step(model, optimizer, data, k)
    checkpoint = optimizer.state_dict()
    for st in checkpoint["state"].values():
        st["step"], st["mu_product"] = st["step"].item(), st["mu_product"].item()
    copies = [copy.deepcopy(model) for _ in range(2)]
    resumed = [cls(m.parameters(), lr=1e-2) for cls, m in zip((torch.optim.NAdam, nt.NAdam), copies)]
    for opt in resumed:
        opt.load_state_dict(copy.deepcopy(checkpoint))
    for k in range(5, 15):
        for m, opt in zip(copies, resumed):
            train_step(m, opt, data, k)
    assert_params_close(list(copies[0].parameters()), list(copies[1].parameters()), torch.float64,
                        15, "NAdam resumed from plain numbers")
    for st in resumed[1].state.values():
        assert torch.is_tensor(st["mu_product"]) and st["step"].item() == 15


@pytest.mark.parametrize("name", ["NAdam", "RAdam"])
def test_parameters_at_different_steps_in_one_group(name):
    """A parameter given a gradient only every third step lags the others: one group, with
    RAdam's parameters on both sides of rho_t = 5 for a while, NAdam's products apart."""
    theirs, their_opt, ours, our_opt = twins(name, dict(lr=1e-2), torch.float64)
    data = make_data(torch.float64)
    for k in range(30):
        for model, optimizer in ((theirs, their_opt), (ours, our_opt)):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(data[0][:16]), data[1][:16]).backward()
            if k % 3:
                model[0].weight.grad = None
            optimizer.step()
        assert_params_close(list(theirs.parameters()), list(ours.parameters()), torch.float64,
                            k + 1, f"{name} step {k + 1}")
    assert our_opt.state[ours[0].weight]["step"].item() == 10
    assert our_opt.state[ours[0].bias]["step"].item() == 30


def test_nadam_state_without_mu_product_is_refused_before_anything_changes():
    theirs, their_opt, ours, our_opt = twins("NAdam", dict(lr=1e-2), torch.float64)
    data = make_data(torch.float64)
    train_step(ours, our_opt, data, 0)
    del our_opt.state[ours[2].weight]["mu_product"]
    before = [p.detach().clone() for p in ours.parameters()]
    with pytest.raises(ValueError, match=r"mu_product.*param_groups\[0\]\['params'\]\[2\]"):
        train_step(ours, our_opt, data, 1)
    for p, q in zip(before, ours.parameters()):
        assert torch.equal(p, q)


def test_training_actually_trains():
    """The loop above compares against torch; this checks that it is a real training loop
    (the loss falls), so that equal parameters are not equal because nothing moved."""
    model = make_model(torch.float64)
    optimizer = nt.Adam(model.parameters(), lr=1e-2)
    data = make_data(torch.float64, rows=16)
    first = train_step(model, optimizer, data, 0).item()
    for k in range(1, STEPS):
        last = train_step(model, optimizer, data, k).item()
    assert last < 0.5 * first


@pytest.mark.parametrize("name, kwargs", [("Adam", dict(lr=1e-2, amsgrad=True)),
                                          ("Adagrad", dict(initial_accumulator_value=0.1)),
                                          ("RMSprop", dict(momentum=0.9, centered=True)),
                                          ("SGD", dict(lr=0.05, momentum=0.9)),
                                          ("NAdam", dict(lr=1e-2)),
                                          ("RAdam", dict(lr=1e-2)),
                                          ("Adamax", dict(lr=1e-2)),
                                          ("Adadelta", dict())])
def test_complex_parameters_equal_to_torch(name, kwargs):
    """torch updates a complex parameter through its real view; so does nnfast.torch."""
    g = torch.Generator().manual_seed(3)
    p = torch.randn(5, 3, generator=g, dtype=torch.complex64)
    q = p.clone()
    theirs, ours = getattr(torch.optim, name)([p], **kwargs), getattr(nt, name)([q], **kwargs)
    for k in range(20):
        grad = torch.randn(5, 3, generator=g, dtype=torch.complex64)
        p.grad, q.grad = grad, grad.clone()
        theirs.step()
        ours.step()
        assert_params_close([torch.view_as_real(p)], [torch.view_as_real(q)], torch.float32,
                            k + 1, f"complex {name}")


def test_tensor_lr_and_betas_read_as_numbers():
    theirs, their_opt, ours, _ = twins("Adam", dict(lr=0.01, betas=(0.8, 0.9)), torch.float64)
    f64 = dict(dtype=torch.float64)  # a float32 tensor would hold 0.8 rounded to float32
    our_opt = nt.Adam(ours.parameters(), lr=torch.tensor(0.01, **f64),
                      betas=(torch.tensor(0.8, **f64), torch.tensor(0.9, **f64)))
    data = make_data(torch.float64)
    for k in range(10):
        train_step(theirs, their_opt, data, k)
        train_step(ours, our_opt, data, k)
    assert_params_close(list(theirs.parameters()), list(ours.parameters()), torch.float64, 10,
                        "tensor lr")


# --------------------------------------------------------------------------- schedulers


SCHEDULERS = [
    ("SGD", dict(lr=0.1, momentum=0.9),
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5)),
    ("Adam", dict(lr=1e-2),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=30)),
    # OneCycleLR also cycles Adam's beta1 and SGD's momentum through param_groups.
    ("Adam", dict(lr=1e-2),
     lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=STEPS)),
    ("SGD", dict(lr=0.05, momentum=0.9),
     lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=STEPS)),
    ("Adagrad", dict(lr=0.1),
     lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.97)),
    ("RMSprop", dict(lr=1e-3),
     lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda epoch: 1 / (1 + epoch))),
    ("AdamW", dict(lr=1e-2),
     lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=2)),
]


@pytest.mark.parametrize("name, kwargs, scheduler", SCHEDULERS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(SCHEDULERS)])
def test_lr_schedulers_work_unchanged(name, kwargs, scheduler):
    dtype = torch.float64
    theirs, their_opt, ours, our_opt = twins(name, kwargs, dtype)
    their_sched, our_sched = scheduler(their_opt), scheduler(our_opt)
    data = make_data(dtype)
    lrs = []
    for k in range(STEPS):
        their_loss = train_step(theirs, their_opt, data, k)
        our_loss = train_step(ours, our_opt, data, k)
        if isinstance(their_sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            their_sched.step(their_loss.item())
            our_sched.step(our_loss.item())
        else:
            their_sched.step()
            our_sched.step()
        assert our_opt.param_groups[0]["lr"] == pytest.approx(their_opt.param_groups[0]["lr"],
                                                              rel=1e-12)
        lrs.append(our_opt.param_groups[0]["lr"])
    assert len(set(lrs)) > 1, "the schedule never changed the learning rate"
    assert_params_close(list(theirs.parameters()), list(ours.parameters()), dtype, STEPS,
                        f"{name} with a scheduler")


# --------------------------------------------------------------------------- checkpoints


def _roundtrip(state_dict):
    """Through torch.save/torch.load, as a checkpoint on disk goes."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


_CHECKPOINT_CASES = [i for i, (name, _) in enumerate(CASES)
                     if i % 2 == 0 or name in ("NAdam", "RAdam")]


def _train_save_resume(first, second, kwargs, dtype, steps):
    """Train ``steps`` steps with optimizer class ``first``, save model and optimizer, load
    them into a fresh model (other weights: everything must come from the file) and an
    optimizer of class ``second``, then train both ``steps`` more. Returns (the first model,
    its optimizer, the resumed model, its optimizer)."""
    model = make_model(dtype)
    optimizer = first(model.parameters(), **kwargs)
    data = make_data(dtype)
    for k in range(steps):
        train_step(model, optimizer, data, k)
    checkpoint = _roundtrip({"model": model.state_dict(), "optimizer": optimizer.state_dict()})
    restarted = make_model(dtype, seed=1)
    restarted.load_state_dict(checkpoint["model"])
    resumed = second(restarted.parameters(), **kwargs)
    resumed.load_state_dict(checkpoint["optimizer"])
    for k in range(steps, 2 * steps):
        train_step(model, optimizer, data, k)
        train_step(restarted, resumed, data, k)
    return model, optimizer, restarted, resumed


@pytest.mark.parametrize("direction", ["torch_to_nnfast", "nnfast_to_torch"])
@pytest.mark.parametrize("name, kwargs", [CASES[i] for i in _CHECKPOINT_CASES],
                         ids=[CASE_IDS[i] for i in _CHECKPOINT_CASES])
def test_checkpoint_loads_across_and_continues(name, kwargs, direction):
    """Train 30 steps with one implementation, save, load into the other (a fresh model and
    optimizer, as after a restart), train 30 more: equal to the first one continuing."""
    dtype = torch.float64
    first, second = (torch.optim, nt) if direction == "torch_to_nnfast" else (nt, torch.optim)
    model, optimizer, restarted, resumed = _train_save_resume(
        getattr(first, name), getattr(second, name), kwargs, dtype, 30)
    assert_params_close(list(model.parameters()), list(restarted.parameters()), dtype, 60,
                        f"{name} {direction}")
    assert resumed.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]


def test_checkpoint_of_fused_torch_adam_loads_and_keeps_its_options():
    """A fused torch checkpoint keeps step on the parameter's device as float32; nnfast.torch
    continues from it and saves it back in the same form."""
    dtype = torch.float32
    model = make_model(dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, fused=True)
    data = make_data(dtype)
    for k in range(5):
        train_step(model, optimizer, data, k)
    ours = copy.deepcopy(model)
    our_opt = nt.Adam(ours.parameters(), lr=1e-2)
    our_opt.load_state_dict(_roundtrip(optimizer.state_dict()))
    for k in range(5, 15):
        train_step(model, optimizer, data, k)
        train_step(ours, our_opt, data, k)
    assert_params_close(list(model.parameters()), list(ours.parameters()), dtype, 15, "fused")
    saved = our_opt.state_dict()
    assert saved["param_groups"][0]["fused"] is True
    assert saved["state"][0]["step"].dtype == torch.float32
    assert saved["state"][0]["step"].item() == 15


def test_checkpoint_with_integer_steps_loads():
    """Checkpoints from torch before 1.12 hold step as a number; torch turns it into a tensor
    on load, and so does nnfast.torch."""
    p = torch.zeros(3, requires_grad=True)
    optimizer = nt.Adam([p])
    optimizer.load_state_dict({"state": {0: {"step": 4, "exp_avg": torch.zeros(3),
                                             "exp_avg_sq": torch.zeros(3)}},
                               "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                                                 "weight_decay": 0, "amsgrad": False,
                                                 "params": [0]}]})
    assert torch.is_tensor(optimizer.state[p]["step"])
    assert optimizer.param_groups[0]["maximize"] is False  # filled in, as torch does
    p.grad = torch.ones(3)
    optimizer.step()
    assert optimizer.state[p]["step"].item() == 5


def test_optimizer_pickles_and_deepcopies():
    model = make_model(torch.float64)
    optimizer = nt.AdamW(model.parameters(), lr=1e-2)
    data = make_data(torch.float64)
    train_step(model, optimizer, data, 0)
    for clone in (copy.deepcopy(optimizer), pickle.loads(pickle.dumps(optimizer))):
        assert type(clone) is nt.AdamW
        assert clone.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]


# --------------------------------------------------------------------------- param groups


def test_param_groups_with_their_own_hyperparameters():
    dtype = torch.float64
    theirs = make_model(dtype)
    ours = copy.deepcopy(theirs)

    def groups(model):
        return [{"params": model[0].parameters(), "lr": 1e-2, "weight_decay": 0.1},
                {"params": model[2].parameters(), "betas": (0.5, 0.9), "amsgrad": True}]
    their_opt = torch.optim.Adam(groups(theirs), lr=3e-3)
    our_opt = nt.Adam(groups(ours), lr=3e-3)
    their_opt.add_param_group({"params": theirs[4].parameters(), "lr": 0.05, "maximize": True})
    our_opt.add_param_group({"params": ours[4].parameters(), "lr": 0.05, "maximize": True})
    data = make_data(dtype)
    for k in range(40):
        train_step(theirs, their_opt, data, k)
        train_step(ours, our_opt, data, k)
    assert len(our_opt.param_groups) == 3
    assert our_opt.state_dict()["param_groups"] == their_opt.state_dict()["param_groups"]
    assert_params_close(list(theirs.parameters()), list(ours.parameters()), dtype, 40, "groups")


def test_parameters_at_different_step_counts():
    """Adam and Adagrad parameters at different step counts share a group: the kernels are
    called once per step count, as each needs its own bias correction or decayed lr."""
    for name, kwargs in [("Adam", dict(lr=1e-2)), ("Adagrad", dict(lr=0.1, lr_decay=0.1))]:
        theirs, their_opt, ours, our_opt = twins(name, kwargs, torch.float64)
        data = make_data(torch.float64)
        last = [list(m[4].parameters()) for m in (theirs, ours)]
        for k in range(20):
            for model, opt, frozen in ((theirs, their_opt, last[0]), (ours, our_opt, last[1])):
                opt.zero_grad()
                torch.nn.functional.mse_loss(model(data[0]), data[1]).backward()
                if k < 5:  # the last layer joins the updates only from step 6
                    for p in frozen:
                        p.grad = None
                opt.step()
        assert {s["step"].item() for s in our_opt.state.values()} == {20.0, 15.0}
        assert_params_close(list(theirs.parameters()), list(ours.parameters()), torch.float64,
                            20, name)


def test_mixed_dtypes_in_one_group():
    a32, a64 = torch.randn(4, dtype=torch.float32), torch.randn(3, dtype=torch.float64)
    b32, b64 = a32.clone(), a64.clone()
    theirs, ours = torch.optim.Adam([a32, a64], lr=0.1), nt.Adam([b32, b64], lr=0.1)
    for k in range(5):
        for t, o in ((a32, b32), (a64, b64)):
            t.grad = torch.full_like(t, 0.5 - k)
            o.grad = t.grad.clone()
        theirs.step()
        ours.step()
    assert_params_close([a32], [b32], torch.float32, 5, "float32 half")
    assert_params_close([a64], [b64], torch.float64, 5, "float64 half")


def test_parameters_without_grad_are_skipped_as_torch_skips_them():
    model = make_model(torch.float64)
    optimizer = nt.SGD(model.parameters(), lr=0.1, momentum=0.9)
    frozen = model[0].weight
    before = frozen.detach().clone()
    data = make_data(torch.float64)
    for k in range(3):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(data[0]), data[1]).backward()
        frozen.grad = None
        optimizer.step()
    assert torch.equal(frozen, before)
    assert frozen not in optimizer.state  # no state, as in torch
    assert len(optimizer.state) == len(list(model.parameters())) - 1


def test_sgd_without_momentum_keeps_no_state_as_torch():
    theirs, their_opt, ours, our_opt = twins("SGD", dict(lr=0.1), torch.float64)
    data = make_data(torch.float64)
    train_step(theirs, their_opt, data, 0)
    train_step(ours, our_opt, data, 0)
    assert our_opt.state_dict()["state"] == their_opt.state_dict()["state"] == {}


def test_adagrad_state_exists_before_the_first_step_as_torch():
    theirs, their_opt, ours, our_opt = twins("Adagrad", dict(initial_accumulator_value=0.5),
                                             torch.float32)
    their_sd, our_sd = their_opt.state_dict(), our_opt.state_dict()
    assert our_sd["state"].keys() == their_sd["state"].keys()
    for i, st in their_sd["state"].items():
        assert torch.equal(our_sd["state"][i]["sum"], st["sum"])
        assert our_sd["state"][i]["step"].dtype == st["step"].dtype


def test_zero_grad_and_closure():
    model = make_model(torch.float32)
    optimizer = nt.RMSprop(model.parameters())
    data = make_data(torch.float32)
    loss = train_step(model, optimizer, data, 0)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert optimizer.step() is None  # no grads: nothing to do, no closure: no loss


def test_is_a_torch_optimizer():
    assert {"SGD", "Adagrad", "RMSprop", "Adam", "AdamW"} <= set(OPTIMIZERS)
    for name in OPTIMIZERS:
        assert issubclass(getattr(nt, name), torch.optim.Optimizer)


# --------------------------------------------------------------------------- memory


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_update_lands_in_the_tensors_own_memory(name):
    """No copy: a NumPy view taken before the step sees the update, the storage stays put,
    and the state tensors are the same objects step after step."""
    p = torch.randn(1000, requires_grad=True)
    view = p.detach().numpy()
    address = p.data_ptr()
    before = view.copy()
    kwargs = dict(momentum=0.9) if name == "SGD" else {}
    optimizer = getattr(nt, name)([p], lr=0.01, **kwargs)
    p.grad = torch.randn(1000)
    optimizer.step()
    assert p.data_ptr() == address
    assert not np.array_equal(view, before)
    np.testing.assert_array_equal(view, p.detach().numpy())
    state = {k: (v, v.data_ptr()) for k, v in optimizer.state[p].items() if k != "step"}
    assert state, "every optimizer here keeps a state tensor"
    optimizer.step()
    for k, (tensor, address) in state.items():
        assert optimizer.state[p][k] is tensor and tensor.data_ptr() == address


def test_step_bumps_the_version_counter_as_inplace_ops_do():
    """The kernels write behind autograd's back; the version counter still moves, so
    autograd refuses a backward through values the step overwrote, as with torch.optim."""
    w = torch.randn(3, requires_grad=True)
    optimizer = nt.SGD([w], lr=0.1)
    out = (w * w).sum()  # saves w for its backward
    w.grad = torch.ones(3)
    optimizer.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


def test_non_contiguous_gradient_is_read_through_a_copy():
    p = torch.zeros(4, 3)
    q = p.clone()
    grad = torch.arange(12.0).reshape(3, 4).t()  # a transposed view: not contiguous
    p.grad, q.grad = grad, grad.contiguous()
    nt.Adam([p], lr=0.1).step()
    nt.Adam([q], lr=0.1).step()
    assert torch.equal(p, q)


_CUDA_CASES = list(range(0, len(CASES), 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA path of "
                    "nnfast.torch runs only where torch sees a GPU")
@pytest.mark.parametrize("name, kwargs", [CASES[i] for i in _CUDA_CASES],
                         ids=[CASE_IDS[i] for i in _CUDA_CASES])
def test_cuda_tensors_equal_to_torch(name, kwargs):
    dtype = torch.float32
    theirs, their_opt, ours, our_opt = twins(name, kwargs, dtype)
    theirs.cuda()
    ours.cuda()
    their_opt = getattr(torch.optim, name)(theirs.parameters(), **kwargs)
    our_opt = getattr(nt, name)(ours.parameters(), **kwargs)
    data = tuple(t.cuda() for t in make_data(dtype))
    addresses = [p.data_ptr() for p in ours.parameters()]
    for k in range(20):
        train_step(theirs, their_opt, data, k)
        train_step(ours, our_opt, data, k)
    assert [p.data_ptr() for p in ours.parameters()] == addresses
    assert_params_close([p.cpu() for p in theirs.parameters()],
                        [p.cpu() for p in ours.parameters()], dtype, 20, f"CUDA {name}")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name, kwargs, match", [
    ("Adam", dict(lr=-1.0), "lr"),
    ("Adam", dict(betas=(1.0, 0.9)), "betas"),
    ("Adam", dict(eps=-1e-8), "eps"),
    ("AdamW", dict(weight_decay=-0.1), "weight_decay"),
    ("SGD", dict(momentum=-0.5), "momentum"),
    ("SGD", dict(momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    ("Adagrad", dict(lr_decay=-1.0), "lr_decay"),
    ("RMSprop", dict(alpha=1.5), "alpha"),
    ("Adam", dict(capturable=True), "capturable"),
    ("RMSprop", dict(differentiable=True), "differentiable"),
    ("Adam", dict(lr=torch.tensor([0.1, 0.2])), "lr"),
    ("NAdam", dict(momentum_decay=-1e-3), "momentum_decay"),
    ("NAdam", dict(betas=(0.9, 1.0)), "betas"),
    ("NAdam", dict(capturable=True), "capturable"),
    ("RAdam", dict(eps=-1.0), "eps"),
    ("RAdam", dict(differentiable=True), "differentiable"),
    ("Adamax", dict(betas=(0.9, 1.0)), "betas"),
    ("Adamax", dict(eps=-1.0), "eps"),
    ("Adamax", dict(capturable=True), "capturable"),
    ("Adadelta", dict(rho=1.5), "rho"),
    ("Adadelta", dict(differentiable=True), "differentiable"),
    ("Lion", dict(betas=(0.9, 1.5)), "betas"),
    ("Lion", dict(weight_decay=-1.0), "weight_decay"),
])
def test_bad_hyperparameters_raise_naming_them(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(nt, name)([torch.zeros(2, requires_grad=True)], **kwargs)


def test_bad_group_is_not_added():
    optimizer = nt.Adam([torch.zeros(2)])
    with pytest.raises(ValueError, match=r"param_groups\[1\]: lr"):
        optimizer.add_param_group({"params": [torch.zeros(3)], "lr": -1.0})
    assert len(optimizer.param_groups) == 1


@pytest.mark.parametrize("make, error, match", [
    (lambda: torch.zeros(3, dtype=torch.float8_e4m3fn), TypeError, "float8_e4m3fn"),
    (lambda: torch.zeros(4, 3).to_sparse(), TypeError, "sparse_coo tensor: nnfast.torch updates dense"),
])
def test_unsupported_parameters_raise(make, error, match):
    with pytest.raises(error, match=match):
        nt.Adam([make()])


def test_sparse_gradient_raises_and_nothing_changes():
    embedding = torch.nn.Embedding(10, 4, sparse=True)
    dense = torch.nn.Parameter(torch.ones(4))
    optimizer = nt.Adam([{"params": [dense]}, {"params": embedding.parameters()}])
    (embedding(torch.tensor([1, 2])).sum() + dense.sum()).backward()
    with pytest.raises(TypeError, match="sparse"):
        optimizer.step()
    assert torch.equal(dense, torch.ones(4))  # the dense group, checked first, is untouched
    assert len(optimizer.state) == 0


def test_a_bad_group_stops_the_whole_step():
    """Every group is checked before any is updated: one bad lr leaves all parameters, and
    their step counts, as they were."""
    a, b = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    optimizer = nt.Adam([{"params": [a]}, {"params": [b]}], lr=0.1)
    a.grad, b.grad = torch.ones(3), torch.ones(3)
    optimizer.step()
    before = a.detach().clone(), b.detach().clone()
    optimizer.param_groups[1]["lr"] = -0.1
    with pytest.raises(ValueError, match=r"param_groups\[1\]: lr"):
        optimizer.step()
    assert torch.equal(a, before[0]) and torch.equal(b, before[1])
    assert optimizer.state[a]["step"].item() == 1


def test_checkpoint_with_wrong_shapes_raises_at_step_and_nothing_changes():
    model = make_model(torch.float64)
    optimizer = nt.Adam(model.parameters())
    data = make_data(torch.float64)
    train_step(model, optimizer, data, 0)
    checkpoint = optimizer.state_dict()
    checkpoint["state"][2]["exp_avg"] = torch.zeros(5, dtype=torch.float64)
    optimizer.load_state_dict(checkpoint)  # torch's load_state_dict does not check shapes
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"'exp_avg' of param_groups\[0\]\['params'\]\[2\]"):
        train_step(model, optimizer, data, 1)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))


def test_state_missing_after_a_configuration_change_raises():
    p = torch.zeros(3, requires_grad=True)
    optimizer = nt.Adam([p])
    p.grad = torch.ones(3)
    optimizer.step()
    optimizer.param_groups[0]["amsgrad"] = True
    with pytest.raises(ValueError, match="max_exp_avg_sq"):
        optimizer.step()


# --------------------------------------------------------------------------- Lion


LION_STEPS = 25


def _lion_twins(dtype, kwargs, seed=0):
    lion_pytorch = pytest.importorskip("lion_pytorch", reason="lion-pytorch is not installed "
                                       "(the test extra): nnfast.torch.Lion is held to it")
    theirs = make_model(dtype, seed)
    ours = copy.deepcopy(theirs)
    return (theirs, lion_pytorch.Lion(theirs.parameters(), **kwargs),
            ours, nt.Lion(ours.parameters(), **kwargs))


def _interpolation_signs(optimizer, model, beta1):
    """sign(beta1 m + (1 - beta1) g) per parameter, in the parameters' dtype: the rounding
    order of nnfast's kernel (two products, then the sum) computed by torch's unfused ops."""
    signs = []
    for p in model.parameters():
        m = optimizer.state[p]["exp_avg"] if p in optimizer.state else torch.zeros_like(p)
        signs.append(torch.sign(m * beta1 + p.grad * (1 - beta1)))
    return signs


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kwargs", [dict(lr=1e-3), dict(lr=3e-4, betas=(0.95, 0.98),
                                                        weight_decay=0.1)],
                         ids=["defaults-betas", "betas-weight_decay"])
def test_lion_equal_to_lion_pytorch(dtype, kwargs):
    """25 steps of lion-pytorch's Lion and nnfast.torch.Lion on one model.

    lion-pytorch forms beta1 m + (1 - beta1) g and the momentum with torch's add(alpha=),
    which torch's CPU kernels fuse into one multiply-add; nnfast rounds the product and the
    sum separately (the same on every ISA and on the GPU). So: the momentum agrees to
    2 u (|m| + (1 - beta2) |g|) per step, u the unit roundoff; the parameters agree bit for
    bit in every element whose sign(c) both sides saw alike at every step (sign(c) differs
    only where c is within a rounding of 0: no element of this model in these runs). The
    momentum's bound is carried through the steps: each adds 2 u (beta2 |m| + (1 - beta2) |g|
    + |m_new|) to the difference beta2 keeps of the earlier ones; the test allows twice it."""
    theirs, their_opt, ours, our_opt = _lion_twins(dtype, kwargs)
    beta1, beta2 = kwargs.get("betas", (0.9, 0.99))
    data = make_data(dtype)
    u = UNIT[dtype]
    flipped = [torch.zeros_like(p, dtype=torch.bool) for p in ours.parameters()]
    carried = [torch.zeros_like(p) for p in ours.parameters()]
    for k in range(LION_STEPS):
        x, y = data
        rows = slice((k * 16) % len(x), (k * 16) % len(x) + 16)
        for model, opt in ((theirs, their_opt), (ours, our_opt)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x[rows]), y[rows]).backward()
        ours_c = _interpolation_signs(our_opt, ours, beta1)
        theirs_c = [torch.sign(their_opt.state[p]["exp_avg"] * beta1
                               + p.grad * (1 - beta1)).to(p.dtype)
                    if p in their_opt.state else torch.sign(p.grad) for p in theirs.parameters()]
        for f, a, b in zip(flipped, ours_c, theirs_c):
            f |= a != b
        m_before = {i: their_opt.state[p]["exp_avg"].clone() if p in their_opt.state
                    else torch.zeros_like(p) for i, p in enumerate(theirs.parameters())}
        grads = [p.grad.clone() for p in theirs.parameters()]
        their_opt.step()
        our_opt.step()
        for i, (tp, op, f) in enumerate(zip(theirs.parameters(), ours.parameters(), flipped)):
            assert torch.equal(tp.detach()[~f], op.detach()[~f]), (
                f"Lion{kwargs} {dtype} step {k + 1}: parameter {i} differs from lion-pytorch "
                f"where the signs agreed")
            tm, om = their_opt.state[tp]["exp_avg"], our_opt.state[op]["exp_avg"]
            carried[i] = beta2 * carried[i] + 2 * u * (
                beta2 * m_before[i].abs() + (1 - beta2) * grads[i].abs() + tm.abs())
            assert ((tm - om).abs() <= 2 * carried[i]).all(), (
                f"Lion{kwargs} {dtype} step {k + 1}: exp_avg {i} beyond the rounding bound")
    total = sum(f.numel() for f in flipped)
    assert sum(int(f.sum()) for f in flipped) <= total // 1000


def test_lion_defaults_and_state_are_lion_pytorchs():
    lion_pytorch = pytest.importorskip("lion_pytorch", reason="lion-pytorch is not installed")
    p, q = torch.randn(4, requires_grad=True), torch.randn(4, requires_grad=True)
    theirs, ours = lion_pytorch.Lion([p]), nt.Lion([q])
    for key in ("lr", "betas", "weight_decay"):
        assert ours.defaults[key] == theirs.defaults[key]
    q.grad = torch.ones(4)
    ours.step()
    assert set(ours.state[q]) == {"step", "exp_avg"}  # lion-pytorch's exp_avg, and a count


@pytest.mark.parametrize("direction", ["lion_pytorch_to_nnfast", "nnfast_to_lion_pytorch"])
def test_lion_checkpoint_crosses_both_ways(direction):
    """10 steps with one, save, load into the other, 10 more: the same parameters as the
    first one continuing. lion-pytorch keeps no step count: loaded here, it starts at 0."""
    lion_pytorch = pytest.importorskip("lion_pytorch", reason="lion-pytorch is not installed")
    dtype, kwargs = torch.float64, dict(lr=1e-3, weight_decay=0.1)
    first, second = ((lion_pytorch.Lion, nt.Lion) if direction == "lion_pytorch_to_nnfast"
                     else (nt.Lion, lion_pytorch.Lion))
    model, _, restarted, resumed = _train_save_resume(first, second, kwargs, dtype, 10)
    assert_params_close(list(model.parameters()), list(restarted.parameters()), dtype, 20,
                        f"Lion {direction}")
    if second is nt.Lion:
        assert all(resumed.state[p]["step"].item() == 10 for p in restarted.parameters())


# --------------------------------------------------------------------------- Adadelta in ULPs


@pytest.mark.parametrize("kwargs", [dict(), dict(lr=0.5, rho=0.95, eps=1e-7, maximize=True),
                                    dict(rho=0.5, eps=1e-3), dict(lr=1e-2, rho=0.99)],
                         ids=["defaults", "rho-eps-maximize", "rho-eps", "lr-rho"])
def test_adadelta_float32_within_a_few_ulps_of_torch(kwargs):
    """50 float32 steps of torch.optim.Adadelta and nnfast.torch.Adadelta, each started from
    torch's parameters and states (copied into nnfast's), on 100003 elements and gradients
    of magnitudes 1e-3 to 10: nnfast computes in torch's order, and the differences left are
    torch's own roundings. Its addcmul fuses the last multiply-add (nnfast rounds twice, the
    same on every ISA), and its CPU sqrt is not correctly rounded (up to about 0.8 ulp). The
    bound, in units in the last place of torch's value (2**-23 |x|): square_avg 2 (measured
    1), acc_delta 10 (measured 7), the parameters 4 (measured 3) of the larger of |p| and
    the step's |p_t - p_(t-1)|. (With weight_decay torch also fuses g + wd p: the training
    loops above cover that case with their looser bound.)"""
    g = torch.Generator().manual_seed(0)
    scales = torch.logspace(-3, 1, 50)
    theirs = torch.randn(100003, generator=g)
    ours = theirs.clone()
    their_opt, our_opt = torch.optim.Adadelta([theirs], **kwargs), nt.Adadelta([ours], **kwargs)
    ulp = 2.0**-23
    bounds = {"square_avg": 2, "acc_delta": 10}
    for k in range(50):
        theirs.grad = torch.randn(100003, generator=g) * scales[k]
        ours.grad = theirs.grad.clone()
        before = theirs.detach().clone()
        their_opt.step()
        our_opt.step()
        step_size = torch.maximum(theirs.abs(), (theirs - before).abs())
        assert ((ours - theirs).abs() <= 4 * ulp * step_size).all(), f"params, step {k + 1}"
        for name, bound in bounds.items():
            want, got = their_opt.state[theirs][name], our_opt.state[ours][name]
            assert ((got - want).abs() <= bound * ulp * want.abs()).all(), f"{name}, step {k + 1}"
        with torch.no_grad():  # the next step starts from torch's values
            ours.copy_(theirs)
            for name in bounds:
                our_opt.state[ours][name].copy_(their_opt.state[theirs][name])
