"""nnfast.torch on bfloat16 and float16 models: torch's fused semantics by default (states in
the parameter's dtype, math in float32), and nnfast's storage options (float32 masters,
remainders, float32 states, stochastic rounding), against torch and the float32 step."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from ml_dtypes import bfloat16

import nnfast

torch = pytest.importorskip("torch")

import nnfast.torch as nt  # noqa: E402

HALF = [torch.bfloat16, torch.float16]

#: torch's fused CPU optimizers that are right on 16-bit parameters (torch 2.13's fused SGD
#: is not: it updates only the last n % 16 elements of each bfloat16/float16 tensor; its fused
#: Adagrad rounds the new sum, and the decayed gradient g + wd * p, to the parameter's dtype
#: before using them, so it is not float32 math rounded once: nnfast's Adagrad is held to the
#: float64 reference instead, in test_optim_precision.py).
FUSED = [
    (nt.Adam, torch.optim.Adam, dict(lr=1e-3)),
    (nt.Adam, torch.optim.Adam, dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1,
                                     amsgrad=True)),
    (nt.AdamW, torch.optim.AdamW, dict(lr=1e-3, weight_decay=0.05)),
]
FUSED_IDS = ["adam", "adam-amsgrad-wd", "adamw"]


def _model(dtype, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(33, 64), torch.nn.Tanh(),
                               torch.nn.Linear(64, 5)).to(dtype)


def _batch(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(16, 33, generator=g).to(dtype), torch.randn(16, 5, generator=g).to(dtype))


def _backward(model, x, y):
    model.zero_grad()
    ((model(x) - y) ** 2).mean().backward()


def _ulp(t):
    """The spacing of t's 16-bit dtype at each |t| (its subnormal spacing near zero)."""
    info = torch.finfo(t.dtype)
    return torch.clamp(t.float().abs(), min=info.tiny) * info.eps


@pytest.mark.parametrize("dtype", HALF, ids=["bfloat16", "float16"])
@pytest.mark.parametrize("ours, theirs, kwargs", FUSED, ids=FUSED_IDS)
def test_step_for_step_equal_to_torch_fused(ours, theirs, kwargs, dtype):
    """100 training steps: each step starts both optimizers from the same parameters, state
    and gradients (torch's, copied into nnfast's). Both compute in float32 and round once;
    torch orders some roundings otherwise (lerp, addcdiv). So every updated element lies
    within one unit in the last place of torch's, plus where float32 itself cancels (an
    average of gradients of both signs near zero) 2^-20 times the largest magnitude of the
    tensor's operands: a few float32 roundings of the terms that cancelled."""
    model = _model(dtype)
    twin = copy.deepcopy(model)
    mine, reference = ours(model.parameters(), **kwargs), theirs(twin.parameters(), fused=True,
                                                                 **kwargs)
    worst = 0.0
    for step in range(100):
        x, y = _batch(dtype, step)
        _backward(twin, x, y)
        for p, q in zip(model.parameters(), twin.parameters()):
            p.grad = q.grad.clone()
        scales = {q: max(float(q.grad.float().abs().max()), float(q.detach().float().abs().max()))
                  for q in twin.parameters()}
        mine.step()
        reference.step()
        for p, q in zip(model.parameters(), twin.parameters()):
            pairs = [(p.detach(), q.detach())] + [(mine.state[p][n], t) for n, t in
                                                  reference.state[q].items() if n != "step"]
            for a, b in pairs:
                scale = max(scales[q], float(b.float().abs().max()))
                tol = _ulp(b) + 2.0**-20 * scale
                worst = max(worst, float(((a.float() - b.float()).abs() / tol).max()))
        with torch.no_grad():  # resynchronize: the next step starts from torch's values
            for p, q in zip(model.parameters(), twin.parameters()):
                p.copy_(q)
                for name, t in reference.state[q].items():
                    if name != "step":
                        mine.state[p][name].copy_(t)
    assert worst <= 1.0, f"{worst:.3g} times the bound"


def _train(optimizer_of, dtype, steps, seed=1, model=None):
    model = model or _model(dtype, seed)
    optimizer = optimizer_of(model)
    for step in range(steps):
        _backward(model, *_batch(dtype, step))
        optimizer.step()
    return model, optimizer


@pytest.mark.parametrize("dtype", HALF, ids=["bfloat16", "float16"])
@pytest.mark.parametrize("cls, kwargs", [(nt.Adam, dict(lr=1e-2)), (nt.SGD, dict(lr=0.1, momentum=0.9)),
                                         (nt.RMSprop, dict(lr=1e-3, centered=True)),
                                         (nt.Adagrad, dict(lr=0.1)),
                                         (nt.NAdam, dict(lr=1e-2, weight_decay=0.01)),
                                         (nt.RAdam, dict(lr=1e-2)),
                                         (nt.LAMB, dict(lr=1e-2, max_grad_norm=0.5)),
                                         (nt.Lion, dict(lr=1e-3, weight_decay=0.1)),
                                         (nt.Adamax, dict(lr=1e-2)), (nt.Adadelta, dict())],
                         ids=["adam", "sgdm", "rmsprop", "adagrad", "nadam", "radam", "lamb", "lion",
                              "adamax", "adadelta"])
def test_master_weights_follow_the_float32_run_exactly(cls, kwargs, dtype):
    """With master_weights the float32 masters take the bits a float32 model's parameters
    take under the same gradients; the 16-bit parameters are the masters rounded."""
    model = _model(dtype)
    optimizer = cls(model.parameters(), master_weights=True, state_dtype=torch.float32,
                    **kwargs)
    shadow = copy.deepcopy(model).float()
    shadow_opt = cls(shadow.parameters(), **kwargs)
    for step in range(20):
        _backward(model, *_batch(dtype, step))
        for p, q in zip(model.parameters(), shadow.parameters()):
            q.grad = p.grad.float()
        optimizer.step()
        shadow_opt.step()
        for p, q in zip(model.parameters(), shadow.parameters()):
            master = optimizer.state[p]["master_param"]
            assert torch.equal(master, q.detach())
            assert torch.equal(p.detach(), master.to(dtype))


def _join(param, remainder):
    """The float32 master a (bfloat16 param, int16 remainder) pair encodes."""
    high = param.detach().view(torch.int16).to(torch.int32) & 0xFFFF
    high = torch.where(remainder < 0, (high - 1) & 0xFFFF, high)
    return ((high << 16) | (remainder.to(torch.int32) & 0xFFFF)).view(torch.float32)


@pytest.mark.parametrize("cls, kwargs", [(nt.Adam, dict(lr=1e-2)), (nt.SGD, dict(lr=0.1, momentum=0.9))],
                         ids=["adam", "sgdm"])
def test_remainders_equal_masters_bit_for_bit(cls, kwargs):
    """Under the same gradients the remainder pair encodes exactly the master. (The bfloat16
    parameters themselves may differ at exact ties: the encoding rounds its high half half
    away from zero, the master's copy to nearest even.)"""
    a = _model(torch.bfloat16)
    b = copy.deepcopy(a)
    with_masters = cls(a.parameters(), master_weights=True, **kwargs)
    with_remainders = cls(b.parameters(), store_param_remainders=True, **kwargs)
    for step in range(15):
        _backward(a, *_batch(torch.bfloat16, step))
        for p, q in zip(a.parameters(), b.parameters()):
            q.grad = p.grad.clone()
        with_masters.step()
        with_remainders.step()
        for p, q in zip(a.parameters(), b.parameters()):
            remainder = with_remainders.state[q]["param_remainder"]
            assert remainder.dtype == torch.int16
            assert torch.equal(_join(q, remainder).view(torch.int32),
                               with_masters.state[p]["master_param"].view(torch.int32))


@pytest.mark.parametrize("options", [dict(master_weights=True), dict(store_param_remainders=True),
                                     dict(stochastic_rounding=True),
                                     dict(state_dtype=torch.float32)],
                         ids=["masters", "remainders", "stochastic", "float32-states"])
@pytest.mark.parametrize("cls", [nt.AdamW, nt.Lion, nt.SGD], ids=["adamw", "lion", "sgd"])
def test_checkpoint_with_storage_options_resumes_bit_for_bit(options, cls):
    extra = dict(momentum=0.9) if cls is nt.SGD else {}

    def make(model):
        torch.manual_seed(5)  # (the stochastic-rounding seed comes from torch's generator)
        return cls(model.parameters(), lr=1e-2, **extra, **options)
    straight, _ = _train(make, torch.bfloat16, 12)
    first, opt = _train(make, torch.bfloat16, 6)
    checkpoint = copy.deepcopy(opt.state_dict())
    resumed_model = copy.deepcopy(first)
    resumed = cls(resumed_model.parameters(), lr=1e-2, **extra,
                  **{k: v for k, v in options.items() if k != "stochastic_rounding"})
    resumed.load_state_dict(checkpoint)
    for step in range(6, 12):
        _backward(resumed_model, *_batch(torch.bfloat16, step))
        resumed.step()
    for p, q in zip(straight.parameters(), resumed_model.parameters()):
        assert torch.equal(p.detach().view(torch.int16), q.detach().view(torch.int16))


def test_sgd_counts_steps_for_stochastic_rounding_keys():
    """torch's SGD keeps no step count; with stochastic rounding nnfast's keeps one, so each
    step draws new bits (step t is the functional step with step=t)."""
    torch.manual_seed(0)
    p = torch.randn(5000).to(torch.bfloat16)
    opt = nt.SGD([p], lr=1e-3, stochastic_rounding=True)
    seed = opt.param_groups[0]["seed"]
    def as_numpy(t):
        return t.view(torch.int16).numpy().view(bfloat16)

    expected = as_numpy(p).copy()
    for t in range(1, 5):
        p.grad = torch.randn(5000).to(torch.bfloat16)
        opt.step()
        nnfast.sgd_step(expected, as_numpy(p.grad), lr=1e-3, step=t, stochastic_rounding=True,
                        seed=seed)
        assert opt.state[p]["step"].item() == t
    assert torch.equal(p.view(torch.int16), torch.from_numpy(expected.view(np.int16)))


def test_stochastic_rounding_seed_comes_from_torch_and_is_kept():
    torch.manual_seed(3)
    a = nt.Adam(_model(torch.bfloat16).parameters(), stochastic_rounding=True)
    torch.manual_seed(3)
    b = nt.Adam(_model(torch.bfloat16).parameters(), stochastic_rounding=True)
    assert a.param_groups[0]["seed"] == b.param_groups[0]["seed"]
    assert a.state_dict()["param_groups"][0]["seed"] == a.param_groups[0]["seed"]


def test_default_groups_are_torchs_exactly():
    """With no storage option, the groups (and so a checkpoint) hold torch's keys only."""
    model = _model(torch.bfloat16)
    ours, theirs = nt.Adam(model.parameters()), torch.optim.Adam(model.parameters())
    assert set(ours.param_groups[0]) == set(theirs.param_groups[0])


def test_float32_states_for_bfloat16_params_are_deepspeeds_configuration():
    model, opt = _train(lambda m: nt.Adam(m.parameters(), lr=1e-2, state_dtype=torch.float32),
                        torch.bfloat16, 3)
    p = next(model.parameters())
    assert p.dtype == torch.bfloat16
    assert opt.state[p]["exp_avg"].dtype == torch.float32


def test_storage_options_that_do_not_fit_are_refused():
    params = _model(torch.bfloat16).parameters()
    with pytest.raises(ValueError, match="master_weights and store_param_remainders"):
        nt.Adam(params, master_weights=True, store_param_remainders=True)
    with pytest.raises(TypeError, match="state_dtype"):
        nt.Adam(_model(torch.bfloat16).parameters(), state_dtype=torch.float16)
    with pytest.raises(ValueError, match="stochastic_rounding: not with a master"):
        nt.Adam(_model(torch.bfloat16).parameters(), master_weights=True, stochastic_rounding=True)


def test_float32_parameters_beside_bfloat16_ones_ignore_the_options():
    """A model with float32 norms and bfloat16 weights: masters for the 16-bit ones only."""
    model = _model(torch.bfloat16)
    model[2].float()
    opt = nt.Adam(model.parameters(), lr=1e-2, master_weights=True)
    x, y = _batch(torch.bfloat16, 0)
    model.zero_grad()
    ((model[2](model[1](model[0](x)).float()) - y.float()) ** 2).mean().backward()
    opt.step()
    assert "master_param" in opt.state[model[0].weight]
    assert "master_param" not in opt.state[model[2].weight]


def test_functional_steps_take_cpu_tensors_in_place():
    """CPU tensors of any supported dtype go to the functional steps as they are: zero copy,
    updated in place, under the GPU arrays' rules (a tensor autograd tracks is not written;
    a written tensor must be contiguous; a strided gradient is read through a copy)."""
    import numpy as np

    import nnfast
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        p = torch.linspace(-1, 1, 37).to(dtype)
        g = torch.linspace(1, 2, 37).to(dtype)
        expected = (p.float() - 0.5 * g.float()).to(dtype)
        address = p.data_ptr()
        nnfast.sgd_step(p, g, lr=0.5)
        assert p.data_ptr() == address and torch.equal(p, expected)
    p, m, v = torch.zeros(8), torch.zeros(8), torch.zeros(8)
    g = torch.ones(16)[::2]  # strided: read through a copy
    nnfast.adam_step(p, g, m, v, step=1, lr=0.1)
    np.testing.assert_allclose(p.numpy(), -0.1, rtol=1e-6)
    with pytest.raises(ValueError, match="requires grad"):
        nnfast.sgd_step(torch.ones(3, requires_grad=True), torch.ones(3), lr=1.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        nnfast.sgd_step(torch.ones(4, 3).t(), torch.ones(3, 4), lr=1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_channels_last_parameters_are_updated_in_place_with_states_alike(dtype):
    """A channels_last (dense, non-contiguous) parameter is updated in its own memory, its
    states made with its strides; the result equals a contiguous twin's bit for bit."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 16, 3).to(dtype).to(memory_format=torch.channels_last)
    twin = copy.deepcopy(conv).to(memory_format=torch.contiguous_format)
    assert not conv.weight.is_contiguous() and twin.weight.is_contiguous()
    ours, theirs = nt.AdamW(conv.parameters(), lr=1e-2), nt.AdamW(twin.parameters(), lr=1e-2)
    address = conv.weight.data_ptr()
    x = torch.randn(2, 8, 9, 9).to(dtype)
    for _ in range(4):
        theirs.zero_grad()
        twin(x).square().mean().backward()
        for p, q in zip(conv.parameters(), twin.parameters()):  # the same gradients, in p's layout
            p.grad = q.grad.to(memory_format=torch.channels_last) if p.dim() == 4 else q.grad.clone()
        ours.step()
        theirs.step()
    assert conv.weight.data_ptr() == address
    assert ours.state[conv.weight]["exp_avg"].stride() == conv.weight.stride()
    assert torch.equal(conv.weight.contiguous(), twin.weight)


def test_parameters_with_gaps_are_updated_through_a_copy():
    base = torch.randn(6, 8)
    gappy = torch.nn.Parameter(base[:, ::2])
    dense = torch.nn.Parameter(gappy.detach().clone())
    assert not gappy.is_contiguous()
    ours, theirs = nt.SGD([gappy], lr=0.1, momentum=0.9), nt.SGD([dense], lr=0.1, momentum=0.9)
    for _ in range(3):
        for p, opt in ((gappy, ours), (dense, theirs)):
            opt.zero_grad()
            (p ** 3).sum().backward()
            opt.step()
    assert torch.equal(gappy.detach(), dense.detach())
    assert torch.equal(base[:, ::2], gappy.detach())  # its own memory holds the result
