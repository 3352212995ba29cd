"""nnfast.torch.LAMB against a line-by-line torch transcription of apex FusedLAMB's math
(apex itself needs CUDA to build; the transcription is the only torch LAMB): training loops
step for step in float32 and float64 over every option, checkpoints both ways, GradScaler,
and the functional step's determinism over thread counts (skipped where torch is not
installed).

Tolerance: as tests/test_torch_optim.py, ``k * PER_STEP * u * (|p| + 1)`` after step k. The
trust ratio is a quotient of two norms summed in float64 (nnfast) or in the compute type
(the transcription, as apex): a few roundings per step, far below what a wrong formula moves.
"""

import copy

import numpy as np
import pytest

import nnfast
from _helpers import num_threads

torch = pytest.importorskip("torch", reason="torch is not installed: nnfast.torch needs it "
                                            "(pip install \"nnfast[torch]\")")
import nnfast.torch as nt  # noqa: E402  (after the importorskip)
from test_torch_optim import assert_params_close, make_data, make_model, train_step  # noqa: E402


class TranscribedLAMB(torch.optim.Optimizer):
    """apex.optimizers.FusedLAMB's update written out in torch ops: the global norm of every
    gradient (all groups), clipped_ratio = max_grad_norm / max(norm, max_grad_norm), then
    per parameter the Adam-style direction (L2 or decoupled decay), the trust ratio
    ||p|| / ||u|` (1 where either is 0, or without decay and use_nvlamb) and p -= lr r u.
    State per parameter: step, exp_avg, exp_avg_sq (nnfast.torch.LAMB's format)."""

    def __init__(self, params, lr=1e-3, bias_correction=True, betas=(0.9, 0.999), eps=1e-6,
                 weight_decay=0.01, adam_w_mode=True, grad_averaging=True, max_grad_norm=1.0,
                 use_nvlamb=False, maximize=False):
        super().__init__(params, dict(lr=lr, bias_correction=bias_correction, betas=betas,
                                      eps=eps, weight_decay=weight_decay, adam_w_mode=adam_w_mode,
                                      grad_averaging=grad_averaging, use_nvlamb=use_nvlamb,
                                      maximize=maximize))
        self.max_grad_norm = max_grad_norm

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        global_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g)
                                                            for g in grads]))
        clip = 1.0
        if self.max_grad_norm > 0 and global_norm > self.max_grad_norm:
            clip = self.max_grad_norm / global_norm
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            beta3 = 1 - beta1 if group["grad_averaging"] else 1.0
            decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0, dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"].item()
                c1 = 1 - beta1**t if group["bias_correction"] else 1.0
                c2 = 1 - beta2**t if group["bias_correction"] else 1.0
                g = p.grad * clip
                if group["maximize"]:
                    g = -g
                if not group["adam_w_mode"] and decay != 0:
                    g = g + decay * p
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(beta3 * g)
                v.mul_(beta2).add_((1 - beta2) * g * g)
                u = (m / c1) / ((v / c2).sqrt() + group["eps"])
                if group["adam_w_mode"] and decay != 0:
                    u = u + decay * p
                ratio = 1.0
                if decay != 0 or group["use_nvlamb"]:
                    p_norm, u_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(u)
                    if p_norm != 0 and u_norm != 0:
                        ratio = (p_norm / u_norm).item()
                p.sub_(group["lr"] * ratio * u)
        return loss


STEPS = 60
DTYPES = [torch.float32, torch.float64]

CASES = [
    dict(),
    dict(lr=1e-2),
    dict(lr=1e-2, weight_decay=0.0),
    dict(lr=1e-2, weight_decay=0.0, use_nvlamb=True),
    dict(lr=1e-2, adam_w_mode=False, weight_decay=0.1),
    dict(lr=1e-2, grad_averaging=False),
    dict(lr=1e-2, bias_correction=False),
    dict(lr=1e-2, max_grad_norm=0.0),
    dict(lr=1e-2, max_grad_norm=0.05, betas=(0.8, 0.99), eps=1e-8),
    dict(lr=1e-3, maximize=True, use_nvlamb=True),
    dict(lr=1e-2, adam_w_mode=False, grad_averaging=False, bias_correction=False,
         use_nvlamb=True, max_grad_norm=0.1),
]
CASE_IDS = [",".join(f"{k}={v}" for k, v in kw.items()) or "defaults" for kw in CASES]


def twins(kwargs, dtype, seed=0):
    theirs = make_model(dtype, seed)
    ours = copy.deepcopy(theirs)
    return (theirs, TranscribedLAMB(theirs.parameters(), **kwargs),
            ours, nt.LAMB(ours.parameters(), **kwargs))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kwargs", CASES, ids=CASE_IDS)
def test_training_loop_equal_to_the_apex_transcription(kwargs, dtype):
    theirs, their_opt, ours, our_opt = twins(kwargs, dtype)
    data = make_data(dtype)
    for k in range(STEPS):
        train_step(theirs, their_opt, data, k)
        train_step(ours, our_opt, data, k)
        assert_params_close(list(theirs.parameters()), list(ours.parameters()), dtype, k + 1,
                            f"LAMB{kwargs} step {k + 1}")
    for p, q in zip(theirs.parameters(), ours.parameters()):
        assert our_opt.state[q].keys() == their_opt.state[p].keys()
        assert our_opt.state[q]["step"].item() == STEPS


def test_training_moves_the_loss_and_the_trust_ratio_matters():
    """A wrong ratio (r = 1 always) would be caught: with decay it changes every step."""
    theirs, _, ours, our_opt = twins(dict(lr=1e-2), torch.float64)
    plain = torch.optim.Adam(theirs.parameters(), lr=1e-2)  # (no trust ratio)
    data = make_data(torch.float64)
    first = train_step(ours, our_opt, data, 0).item()
    for k in range(1, 200):
        last = train_step(ours, our_opt, data, k).item()
        train_step(theirs, plain, data, k)
    assert last < 0.8 * first
    assert max((p - q).abs().max().item() for p, q in zip(theirs.parameters(),
                                                          ours.parameters())) > 1e-3


def test_zero_parameters_take_the_plain_direction():
    """||p|| = 0 gives r = 1 (apex): a zero tensor moves by lr * u."""
    p = torch.zeros(7, dtype=torch.float64, requires_grad=True)
    q = p.detach().clone().requires_grad_(True)
    grad = torch.linspace(-1.0, 1.0, 7, dtype=torch.float64)
    ours, theirs = nt.LAMB([p], lr=0.1), TranscribedLAMB([q], lr=0.1)
    p.grad, q.grad = grad.clone(), grad.clone()
    ours.step()
    theirs.step()
    torch.testing.assert_close(p, q, rtol=1e-14, atol=1e-16)
    assert p.abs().max().item() > 0.05  # lr * u moves it


def test_global_norm_spans_every_group():
    """max_grad_norm clips by the norm over all groups, not per group."""
    dtype = torch.float64
    theirs, ours = make_model(dtype), None
    ours = copy.deepcopy(theirs)

    def groups(model):
        layers = list(model.parameters())
        return [{"params": layers[:2], "lr": 3e-3}, {"params": layers[2:], "weight_decay": 0.1}]
    their_opt = TranscribedLAMB(groups(theirs), lr=1e-2, max_grad_norm=0.1)
    our_opt = nt.LAMB(groups(ours), lr=1e-2, max_grad_norm=0.1)
    data = make_data(dtype)
    for k in range(20):
        train_step(theirs, their_opt, data, k)
        train_step(ours, our_opt, data, k)
    assert_params_close(list(theirs.parameters()), list(ours.parameters()), dtype, 20, "groups")
    assert our_opt.last_grad_norm is not None


@pytest.mark.parametrize("direction", ["transcription_to_nnfast", "nnfast_to_transcription"])
def test_checkpoint_loads_across_and_continues(direction):
    dtype = torch.float64
    kinds = (TranscribedLAMB, nt.LAMB)
    first, second = kinds if direction == "transcription_to_nnfast" else kinds[::-1]
    model = make_model(dtype)
    optimizer = first(model.parameters(), lr=1e-2)
    data = make_data(dtype)
    for k in range(20):
        train_step(model, optimizer, data, k)
    saved = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict()})
    restarted = make_model(dtype, seed=1)
    restarted.load_state_dict(saved["model"])
    resumed = second(restarted.parameters(), lr=1e-2)
    resumed.load_state_dict(saved["optimizer"])
    for k in range(20, 40):
        train_step(model, optimizer, data, k)
        train_step(restarted, resumed, data, k)
    assert_params_close(list(model.parameters()), list(restarted.parameters()), dtype, 40,
                        direction)


@pytest.mark.parametrize("scaler", ["torch", "nnfast"])
def test_grad_scaler_loop_equals_unscaled_training(scaler):
    """With a GradScaler (its scale a power of two: exact unscaling) the steps equal those of
    unscaled gradients; a step with an inf gradient is skipped whole."""
    dtype = torch.float32
    plain_model, _, scaled_model, scaled_opt = twins(dict(lr=1e-2), dtype)
    plain_opt = nt.LAMB(plain_model.parameters(), lr=1e-2)
    grad_scaler = (torch.amp.GradScaler if scaler == "torch" else nt.GradScaler)(
        "cpu", init_scale=2.0**10)
    x, y = make_data(dtype)
    for k in range(10):
        rows = slice(16 * (k % 4), 16 * (k % 4) + 16)
        plain_opt.zero_grad()
        torch.nn.functional.mse_loss(plain_model(x[rows]), y[rows]).backward()
        plain_opt.step()
        scaled_opt.zero_grad()
        loss = torch.nn.functional.mse_loss(scaled_model(x[rows]), y[rows])
        grad_scaler.scale(loss).backward()
        grad_scaler.step(scaled_opt)
        grad_scaler.update()
    assert_params_close(list(plain_model.parameters()), list(scaled_model.parameters()), dtype,
                        10, f"{scaler} scaler")
    before = [p.detach().clone() for p in scaled_model.parameters()]
    scaled_opt.zero_grad()
    loss = torch.nn.functional.mse_loss(scaled_model(x[:16]), y[:16])
    grad_scaler.scale(loss).backward()
    next(scaled_model.parameters()).grad[0, 0] = float("inf")
    grad_scaler.step(scaled_opt)
    grad_scaler.update()
    assert all(torch.equal(a, p) for a, p in zip(before, scaled_model.parameters()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_functional_step_is_the_same_for_one_and_two_threads(dtype):
    """The norms are summed per chunk in a fixed order: the same bits for any thread count."""
    sizes = (100_003, 70_000, 9)

    def run(threads):
        rng = np.random.default_rng(7)
        params, grads, m, v = [[rng.standard_normal(n).astype(dtype) for n in sizes]
                               for _ in range(4)]
        v = [np.abs(a) for a in v]
        with num_threads(threads):
            nnfast.lamb_step(params, grads, m, v, step=3, lr=0.01, max_grad_norm=0.5)
        return params + m + v

    one, two = run(1), run(2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_found_inf_skips_every_pass_and_bad_options_are_refused():
    p, g = np.ones(5, np.float32), np.full(5, np.nan, np.float32)
    m, v = np.zeros(5, np.float32), np.zeros(5, np.float32)
    nnfast.lamb_step(p, g, m, v, step=1, found_inf=np.ones(1, np.float32))
    assert (p == 1).all() and (m == 0).all() and (v == 0).all()
    with pytest.raises(ValueError, match="^max_grad_norm"):
        nnfast.lamb_step(p, g, m, v, step=1, max_grad_norm=-1.0)
    with pytest.raises(ValueError, match="max_grad_norm"):
        nt.LAMB([torch.zeros(3)], max_grad_norm=-1.0)
    with pytest.raises(TypeError, match="^adam_w_mode"):
        nnfast.lamb_step(p, g, m, v, step=1, adam_w_mode=1)
