"""The benchmark cases: for each kernel, fresh inputs and the calls to time.

A case declares its memory traffic as (arrays only read, arrays updated in
place, arrays written): the bytes any implementation must move at least (each
array read once, updated or written once), and the shape of the roofline kernel
measured beside it. ``make`` builds equal but separate inputs for each
implementation: ``nnfast``, ``numpy`` (nnfast.reference, what a user would
write with NumPy), ``torch`` (PyTorch's fastest CPU path for the same result,
when torch is importable; for Lion, lion-pytorch's) and, for the optimizers DeepSpeed has on the CPU,
``deepspeed`` (its C++ CPU optimizers, when deepspeed is importable). The model-shaped case ``adam_gpt2small`` compares
``nnfast.torch.Adam`` with ``torch.optim.Adam`` fused (``torch``) and default
(``torch_default``) instead; it needs torch (``Case.requires``). ``clip_grad_norm_gpt2small``
clips GPT-2 small's gradient list against ``torch.nn.utils.clip_grad_norm_(foreach=True)``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
import sys
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from ml_dtypes import bfloat16

import nnfast
from nnfast import reference

# PyTorch, imported by load_torch() when a case first builds its inputs: importing it
# takes seconds, which `nnfast --help` and the option checks need not wait for.
torch = F = None


def load_torch():
    """torch (imported on the first call), or None if it cannot be imported (the torch
    columns are then left empty)."""
    global torch, F
    if torch is None and _importable("torch"):
        try:
            import torch as torch_module
            import torch.nn.functional as functional

            import nnfast.torch  # noqa: F401 (the adam_gpt2small case steps nnfast.torch.Adam)
        except ImportError:
            return None
        torch, F = torch_module, functional
    return torch


@dataclass(frozen=True)
class Traffic:
    reads: int  # arrays only read
    updates: int  # arrays read and written in place
    writes: int  # arrays only written
    # The bytes per element of each array in that order, where the arrays' dtypes differ (a
    # storage layout: 16-bit params beside float32 states); empty: every array has the
    # dtype measured.
    layout_bytes: tuple = ()
    # A kernel of several passes over the arrays: one Traffic per pass (whose counts add up
    # to the ones above), each run by the roofline in turn; empty: one pass.
    passes: tuple = ()

    def bytes_per_element(self, itemsize):
        if self.layout_bytes:
            arrays = self.reads + self.updates + self.writes
            assert len(self.layout_bytes) == arrays, "one size per array"
            per_access = [1] * self.reads + [2] * self.updates + [1] * self.writes
            return sum(b * k for b, k in zip(self.layout_bytes, per_access))
        return (self.reads + 2 * self.updates + self.writes) * itemsize


@dataclass
class Inputs:
    """What ``Case.make`` builds: the calls to time and how to label them."""
    elements: int  # elements of the kernel's arrays (the traffic counts bytes of these)
    shape: str  # the size as a user would state it: "1e6", "4096 x 1000", "200 tensors, 1e7"
    calls: dict  # implementation -> call
    paths: dict = field(default_factory=dict)  # peer implementation -> the path it took


@dataclass(frozen=True)
class Case:
    name: str
    family: str  # "optimizers", "activations" or "losses"
    traffic: Traffic
    make: Callable  # (n, dtype, rng, deepspeed=class name if compared) -> Inputs
    default_sizes: tuple = (1e6, 1e7)
    requires: tuple = ()  # modules the case cannot run without
    deepspeed: str = ""  # the DeepSpeed CPU optimizer it is compared with, if any
    # A storage layout the case always runs in, whatever dtype is asked ("bfloat16",
    # "bf16 + f32 states", ...; its arrays' sizes are in traffic); "" runs the dtype asked.
    layout: str = ""

    def missing(self):
        """The modules in ``requires`` that cannot be imported here."""
        return [name for name in self.requires if not _importable(name)]

    def inputs(self, n, dtype, rng):
        """Inputs for n elements: the calls of every implementation importable here."""
        load_torch()
        if self.layout:
            return self.make(int(n), rng)
        if deepspeed_compared(self, dtype):
            return self.make(int(n), dtype, rng, deepspeed=self.deepspeed)
        return self.make(int(n), dtype, rng)


def _importable(name):
    return importlib.util.find_spec(name) is not None


def format_count(n):
    """A count as written by hand: 1e6, 6.4e7 for at most two significant digits from
    10,000 up, else with thousands separators (655,360; 124,439,808)."""
    n = int(n)
    mantissa, exponent = f"{n:.1e}".split("e")
    if n >= 10_000 and float(f"{mantissa}e{exponent}") == n:
        return f"{float(mantissa):g}e{int(exponent)}"
    return f"{n:,}"


def _randn(rng, n, dtype, scale=1.0):
    return (rng.standard_normal(n) * scale).astype(dtype)


def tiled_randn(rng, n, dtype, scale=1.0):
    """n normal values, a block of at most 2**20 drawn and repeated: drawing 10**8 values
    takes seconds, and an elementwise kernel's speed does not depend on their order."""
    block = _randn(rng, min(n, 1 << 20), dtype, scale)
    return np.resize(block, n)


def _implementations(build, elements, shape, torch_path):
    """Inputs with build(impl) for nnfast, numpy and torch (if importable; torch_path
    names the PyTorch path the call takes)."""
    inputs = Inputs(elements, shape, {"nnfast": build("nnfast"), "numpy": build("numpy")})
    if torch is not None:
        torch_call = build("torch")
        if torch_call is not None:
            inputs.calls["torch"] = torch_call
            inputs.paths["torch"] = torch_path
    return inputs


@functools.lru_cache(maxsize=None)
def deepspeed_optimizers():
    """{class name: class} of DeepSpeed's CPU optimizers, or None if deepspeed is not
    importable (the deepspeed column is then absent)."""
    if not _importable("deepspeed"):
        return None
    try:
        # DeepSpeed's logger writes to the stdout of its import: sent to stderr, its
        # lines join the progress there and stdout keeps only the table.
        with contextlib.redirect_stdout(sys.stderr):
            from deepspeed.ops.adagrad import DeepSpeedCPUAdagrad
            from deepspeed.ops.adam import DeepSpeedCPUAdam
            from deepspeed.ops.lion import DeepSpeedCPULion
    except ImportError:
        return None
    return {"DeepSpeedCPUAdam": DeepSpeedCPUAdam, "DeepSpeedCPUAdagrad": DeepSpeedCPUAdagrad,
            "DeepSpeedCPULion": DeepSpeedCPULion}


def deepspeed_compared(case, dtype):
    """Whether measuring `case` in `dtype` times a DeepSpeed optimizer beside nnfast
    (float32 only: DeepSpeed's CPU optimizers step float32, float16 and bfloat16)."""
    return (bool(case.deepspeed) and np.dtype(dtype) == np.float32 and load_torch() is not None
            and deepspeed_optimizers() is not None)


def build_deepspeed_op(name):
    """Steps DeepSpeed's CPU optimizer `name` once on one element: its first construction
    compiles its C++ op (a JIT build, minutes the first time, cached afterwards), which
    must not fall inside a timed sample."""
    t = torch.zeros(1)
    t.grad = torch.zeros(1)
    with contextlib.redirect_stdout(sys.stderr):  # the build's messages, as above
        deepspeed_optimizers()[name]([t]).step()


# ---------------------------------------------------------------- optimizers

_STATES = {
    "sgd_step": (),
    "sgdm_step": ("momentum_buffers",),
    "adagrad_step": ("sums",),
    "rmsprop_step": ("square_avgs",),
    "adam_step": ("exp_avgs", "exp_avg_sqs"),
    "adamw_step": ("exp_avgs", "exp_avg_sqs"),
    "nadam_step": ("exp_avgs", "exp_avg_sqs"),
    "radam_step": ("exp_avgs", "exp_avg_sqs"),
    "lamb_step": ("exp_avgs", "exp_avg_sqs"),
    "lion_step": ("exp_avgs",),
    "adamax_step": ("exp_avgs", "exp_infs"),
    "adadelta_step": ("square_avgs", "acc_deltas"),
}

#: The torch-side implementation compared with each step that has no fused torch.optim
#: one (the others are compared with torch's fused path): foreach where torch.optim has
#: it (on the CPU torch.optim's default is its single-tensor loop, which foreach beats: a
#: 1e7 float32 step on the 2-core VM: NAdam 123 ms loop, 90 ms foreach; RAdam 386 ms, 135 ms).
_TORCH_PATHS = {"rmsprop_step": "foreach", "nadam_step": "foreach", "radam_step": "foreach",
                "adamax_step": "foreach", "adadelta_step": "foreach", "lion_step": "lion-pytorch",
                "lamb_step": "foreach (apex's math)"}


def _torch_path(step_name):
    return _TORCH_PATHS.get(step_name, "fused")


def _torch_lamb(tensors, lr, step, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=1e-2,
                max_grad_norm=1.0):
    """LAMB as apex's FusedLAMB computes it (lamb_step's defaults: decoupled decay, bias
    correction), in torch's foreach ops: torch has no LAMB, and apex's needs CUDA."""
    params = list(tensors)
    grads = [t.grad for t in params]
    m = [torch.zeros_like(t) for t in params]
    v = [torch.zeros_like(t) for t in params]

    def call():
        total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))).item()
        d = torch._foreach_mul(grads, max_grad_norm / max(total, max_grad_norm))
        torch._foreach_lerp_(m, d, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, d, d, value=1 - beta2)
        denom = torch._foreach_div(v, 1 - beta2**step)
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, eps)
        u = torch._foreach_div(m, 1 - beta1**step)
        torch._foreach_div_(u, denom)
        torch._foreach_add_(u, params, alpha=weight_decay)
        ratios = [(pn / un).item() if pn != 0 and un != 0 else 1.0
                  for pn, un in zip(torch._foreach_norm(params), torch._foreach_norm(u))]
        torch._foreach_mul_(u, [-lr * r for r in ratios])
        torch._foreach_add_(params, u)
    return call


def _deepspeed_optimizer(class_name, step_name, params, grads, lr):
    """The step of DeepSpeed's CPU optimizer class_name over torch tensors sharing memory
    with params and grads; AdamW's decay as nnfast's adamw_step default (1e-2), Adam's none."""
    tensors = [torch.from_numpy(p) for p in params]
    for t, g in zip(tensors, grads):
        t.grad = torch.from_numpy(g)
    cls = deepspeed_optimizers()[class_name]
    if step_name == "adagrad_step":
        return cls(tensors, lr=lr).step
    if step_name == "lion_step":
        return cls(tensors, lr=lr, betas=(0.9, 0.99)).step  # lion_step's default betas
    adamw = step_name == "adamw_step"
    return cls(tensors, lr=lr, adamw_mode=adamw, weight_decay=1e-2 if adamw else 0.0).step


def _torch_optimizer(step_name, options, params, grads):
    """torch.optim's fastest CPU path for the step: fused where torch has it (SGD,
    Adagrad, Adam, AdamW), foreach otherwise (RMSprop, NAdam, RAdam, Adamax, Adadelta); for
    Lion, lion-pytorch's Lion (None where it is not installed)."""
    tensors = [torch.from_numpy(p) for p in params]
    for t, g in zip(tensors, grads):
        t.grad = torch.from_numpy(g)
    o = dict(options)
    lr = o.pop("lr", 1e-3)
    if step_name == "lamb_step":
        return _torch_lamb(tensors, lr, o["step"])
    if step_name in ("sgd_step", "sgdm_step"):
        opt = torch.optim.SGD(tensors, lr=lr, momentum=o.get("momentum", 0.0),
                              nesterov=o.get("nesterov", False), fused=True)
    elif step_name == "adagrad_step":
        opt = torch.optim.Adagrad(tensors, lr=lr, fused=True)
    elif step_name in ("nadam_step", "radam_step"):
        cls = torch.optim.NAdam if step_name == "nadam_step" else torch.optim.RAdam
        opt = cls(tensors, lr=lr, foreach=True)
    elif step_name == "rmsprop_step":
        opt = torch.optim.RMSprop(tensors, lr=lr, momentum=o.get("momentum", 0.0),
                                  centered=o.get("centered", False), foreach=True)
    elif step_name == "adamax_step":
        opt = torch.optim.Adamax(tensors, lr=lr, foreach=True)
    elif step_name == "adadelta_step":
        opt = torch.optim.Adadelta(tensors, lr=lr, foreach=True)
    elif step_name == "lion_step":
        if not _importable("lion_pytorch"):
            return None
        from lion_pytorch import Lion
        opt = Lion(tensors, lr=lr)
    else:
        cls = torch.optim.AdamW if step_name == "adamw_step" else torch.optim.Adam
        opt = cls(tensors, lr=lr, amsgrad=o.get("amsgrad", False), fused=True)
    return opt.step


def _optimizer(step_name, extra_states=(), **options):
    """A case for an in-place step over a list of tensors of the given sizes."""
    states = _STATES[step_name] + tuple(extra_states)

    def make_for_sizes(sizes, dtype, rng, shape, deepspeed=""):
        def build(impl):
            params = [_randn(rng, n, dtype) for n in sizes]
            grads = [_randn(rng, n, dtype) for n in sizes]
            if impl == "torch":
                return _torch_optimizer(step_name, options, params, grads)
            if impl == "deepspeed":
                return _deepspeed_optimizer(deepspeed, step_name, params, grads,
                                            options.get("lr", 1e-3))
            # Second moments >= 0, and for centered RMSprop >= grad_avg^2 (grad_avgs start at 0).
            kwargs = dict(options)
            for key in states:
                kwargs[key] = [np.zeros(n, dtype) if key == "grad_avgs"
                               else np.abs(_randn(rng, n, dtype, 1e-2)) for n in sizes]
            positional = [kwargs.pop(key) for key in _STATES[step_name]]
            step = getattr(nnfast if impl == "nnfast" else reference, step_name)
            return lambda: step(params, grads, *positional, **kwargs)
        inputs = _implementations(build, sum(sizes), shape, _torch_path(step_name))
        if deepspeed:
            inputs.calls["deepspeed"] = build("deepspeed")
            inputs.paths["deepspeed"] = deepspeed
        return inputs

    return make_for_sizes


def _adafactor(n, dtype, rng):
    """adafactor_step over one square matrix of about n elements (3162 x 3162 for 1e7), its
    factored path, against torch.optim.Adafactor's foreach path (on the CPU torch's
    default is its single-tensor loop)."""
    side = math.isqrt(int(n))
    shape = (side, side)

    def build(impl):
        params = tiled_randn(rng, side * side, dtype).reshape(shape)
        grads = tiled_randn(rng, side * side, dtype).reshape(shape)
        if impl == "torch":
            tensor = torch.from_numpy(params)
            tensor.grad = torch.from_numpy(grads)
            return torch.optim.Adafactor([tensor], foreach=True).step
        row_var, col_var = np.zeros((side, 1), dtype), np.zeros((1, side), dtype)
        step = nnfast.adafactor_step if impl == "nnfast" else reference.adafactor_step
        return lambda: step([params], [grads], [row_var], [col_var], [None], step=10)
    return _implementations(build, side * side, f"{side} x {side}", "foreach")


def _single(make_for_sizes):
    return lambda n, dtype, rng, **peers: make_for_sizes([n], dtype, rng, format_count(n), **peers)


def _tensor_list(make_for_sizes, count=200, largest=1_000_000):
    """count tensors (n if fewer) of sizes proportional to log-uniform draws in
    [1, largest], each at least 1, totalling n."""
    def make(n, dtype, rng, **peers):
        tensors = min(count, n)
        raw = np.exp(rng.uniform(0, np.log(largest), tensors))
        sizes = 1 + np.floor(raw / raw.sum() * (n - tensors)).astype(int)
        sizes[np.argmax(sizes)] += n - int(sizes.sum())  # exact total
        return make_for_sizes([int(s) for s in sizes], dtype, rng,
                              f"{tensors} tensors, {format_count(n)}", **peers)
    return make


# ---------------------------------------------------------------- activations

_TORCH_ACTIVATIONS = {
    "sigmoid": lambda x, out: torch.sigmoid(x, out=out),
    "tanh": lambda x, out: torch.tanh(x, out=out),
    "relu": lambda x, out: torch.clamp_min(x, 0, out=out),
    "leaky_relu": lambda x, out: torch._C._nn.leaky_relu(x, 0.01, out=out),
    "sigmoid_backward": lambda y, dy, out: torch.ops.aten.sigmoid_backward.grad_input(
        dy, y, grad_input=out),
    "tanh_backward": lambda y, dy, out: torch.ops.aten.tanh_backward.grad_input(
        dy, y, grad_input=out),
    "relu_backward": lambda x, dy, out: torch.ops.aten.threshold_backward.grad_input(
        dy, x, 0, grad_input=out),
    "leaky_relu_backward": lambda x, dy, out: torch.ops.aten.leaky_relu_backward.grad_input(
        dy, x, 0.01, False, grad_input=out),
}


def _activation(name, inputs):
    """out = f(*inputs) into a preallocated out: every implementation's fastest form."""
    def make(n, dtype, rng):
        x = _randn(rng, n, dtype, 4.0)
        first = {"y_sigmoid": nnfast.sigmoid(x), "y_tanh": np.tanh(x), "x": x}[inputs[0]]
        arrays = [first] + [_randn(rng, n, dtype) for _ in inputs[1:]]

        def build(impl):
            out = np.empty(n, dtype)
            if impl == "torch":
                fn = _TORCH_ACTIVATIONS[name]
                t_in = [torch.from_numpy(a) for a in arrays]
                t_out = torch.from_numpy(out)
                return lambda: fn(*t_in, out=t_out)
            f = getattr(nnfast if impl == "nnfast" else reference, name)
            return lambda: f(*arrays, out=out)
        return _implementations(build, n, format_count(n), "aten out=")
    return make


# ---------------------------------------------------------------- losses

def _loss(name, make_inputs, torch_loss):
    """(loss, gradient) in one call; torch: forward and backward through autograd."""
    def make(n, dtype, rng):
        elements, shape, inputs = make_inputs(n, dtype, rng)

        def build(impl):
            if impl == "torch":
                if torch_loss is None:
                    return None
                first = torch.from_numpy(inputs[0].copy()).requires_grad_()
                rest = [torch.from_numpy(a) for a in inputs[1:]]

                def call():
                    first.grad = None
                    loss = torch_loss(first, *rest)
                    loss.backward()
                    return loss.item()
                return call
            # A training loop allocates nothing per step: the gradient goes to grad_out.
            grad = np.empty_like(inputs[0])
            f = getattr(nnfast if impl == "nnfast" else reference, name)
            return lambda: f(*inputs, grad_out=grad)
        return _implementations(build, elements, shape, "autograd")
    return make


def _mse_inputs(n, dtype, rng):
    return n, format_count(n), [_randn(rng, n, dtype), _randn(rng, n, dtype)]


def _rows(n, classes):
    return max(1, int(n) // classes)


def _probability_inputs(n, dtype, rng, classes=1000):
    rows = _rows(n, classes)
    return rows * classes, f"{rows} x {classes}", [
        rng.dirichlet(np.ones(classes), rows).astype(dtype),
        rng.dirichlet(np.ones(classes), rows).astype(dtype)]


def _logit_inputs(classes):
    def make(n, dtype, rng):
        rows = _rows(n, classes)
        return rows * classes, f"{rows} x {classes}", [_randn(rng, (rows, classes), dtype, 3.0),
                                                       rng.integers(0, classes, rows)]
    return make


def _regularizer(name, torch_norm):
    def make(n, dtype, rng):
        w = _randn(rng, n, dtype)

        def build(impl):
            if impl == "torch":
                t = torch.from_numpy(w)
                return lambda: torch_norm(t).item()
            f = getattr(nnfast if impl == "nnfast" else reference, name)
            return lambda: f(w)
        return _implementations(build, n, format_count(n), "vector_norm")
    return make


def _torch_cross_entropy_on_probs(p, t):
    return -(t * torch.log(p)).sum(-1).mean()


# ---------------------------------------------------------------- a model's parameter list

def _gpt2_small_sizes():
    """Element counts of GPT-2 small's 148 parameter tensors, 124,439,808 in all (token and
    position embeddings, 12 blocks of layer norms, attention and MLP weights and biases, the
    final layer norm; the output layer shares the token embedding)."""
    d, vocab, context, layers = 768, 50257, 1024, 12
    block = [d, d, d * 3 * d, 3 * d, d * d, d, d, d, d * 4 * d, 4 * d, 4 * d * d, d]
    return [vocab * d, context * d] + block * layers + [d, d]


_GPT2_SMALL = _gpt2_small_sizes()


def _gpt2_small_scaled(n):
    """GPT-2 small's tensor sizes, each scaled by n / 124,439,808 (at least 1 element)."""
    total = sum(_GPT2_SMALL)
    return [max(1, round(s * n / total)) for s in _GPT2_SMALL]


def _model_adam(n, dtype, rng):
    """One optimizer step over GPT-2 small's parameter list with every tensor scaled by
    n / 124,439,808 (n = 124,439,808 is the model itself): ``nnfast.torch.Adam`` against
    ``torch.optim.Adam`` fused and default (on the CPU, torch's default is its per-tensor
    loop). Each optimizer updates its own copy of the parameters; the gradients, only read,
    are shared."""
    sizes = _gpt2_small_scaled(n)
    params = [tiled_randn(rng, s, dtype) for s in sizes]
    grads = [torch.from_numpy(tiled_randn(rng, s, dtype)) for s in sizes]
    optimizers = {"nnfast": nnfast.torch.Adam,
                  "torch": lambda ts: torch.optim.Adam(ts, fused=True),
                  "torch_default": torch.optim.Adam}

    def build(impl):
        tensors = [torch.from_numpy(p.copy()) for p in params]
        for t, g in zip(tensors, grads):
            t.grad = g
        return optimizers[impl](tensors).step
    return Inputs(sum(sizes), f"{len(sizes)} tensors, {format_count(sum(sizes))}",
                  {impl: build(impl) for impl in optimizers},
                  {"torch": "fused", "torch_default": "for-loop"})


def _amp_adam(n, rng, dtype):
    """The optimizer phase of a mixed-precision step, ``scaler.step(optimizer);
    scaler.update()`` with Adam, gradient clipping at norm 1.0 and a GradScaler, over one
    tensor of n elements of the torch dtype ``dtype``: nnfast.torch.Adam(max_grad_norm=1.0)
    with nnfast.torch.GradScaler (``nnfast``: the norm pass, then the update) and with
    torch.amp.GradScaler (``nnfast_torch_scaler``: torch's inf check first), against torch's
    sequence ``scaler.unscale_``, ``clip_grad_norm_(foreach=True)``, fused ``step``
    (``torch``). Each call unscales its gradients in place, so the scale is 2, not 65536
    (which would take them to zero in a few calls; the passes and bytes are the same).
    States in the params' dtype, as torch's fused Adam keeps them."""
    values = torch.from_numpy(tiled_randn(rng, n, np.float32))
    grads = torch.from_numpy(tiled_randn(rng, n, np.float32, 2.0))

    def build(impl):
        p = torch.nn.Parameter(values.to(dtype))
        p.grad = grads.to(dtype)
        scaler = (nnfast.torch.GradScaler if impl == "nnfast" else torch.amp.GradScaler)(
            "cpu", init_scale=2.0, growth_interval=1 << 30)
        scaler.scale(torch.ones(()))  # (what a backward pass's scale() does first: make the scale)
        optimizer = (torch.optim.Adam([p], fused=True) if impl == "torch"
                     else nnfast.torch.Adam([p], max_grad_norm=1.0))

        def step():
            if impl == "torch":
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_([p], 1.0, foreach=True)
            scaler.step(optimizer)
            scaler.update()
        return step
    impls = ("nnfast", "nnfast_torch_scaler", "torch")
    return Inputs(n, format_count(n), {impl: build(impl) for impl in impls},
                  {"torch": "unscale_+clip+fused"})


def _model_clip(n, dtype, rng):
    """Gradient clipping (the norm pass, then the in-place scaling pass) over GPT-2 small's
    gradient list scaled to n elements: ``nnfast.clip_grad_norm_``, nnfast.reference and
    ``torch.nn.utils.clip_grad_norm_(foreach=True)``, each on its own copy of the grads (the
    first call scales them to norm 1; every later one scales by about 1)."""
    sizes = _gpt2_small_scaled(n)
    grads = [tiled_randn(rng, s, dtype) for s in sizes]

    def build(impl):
        mine = [g.copy() for g in grads]
        if impl == "torch":
            params = [torch.nn.Parameter(torch.from_numpy(g)) for g in mine]
            for p, g in zip(params, mine):
                p.grad = torch.from_numpy(g.copy())
            return lambda: torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        clip = nnfast.clip_grad_norm_ if impl == "nnfast" else reference.clip_grad_norm_
        return lambda: clip(mine, 1.0)
    inputs = _implementations(build, sum(sizes), f"{len(sizes)} tensors, "
                              f"{format_count(sum(sizes))}", "foreach")
    return inputs


# ---------------------------------------------------------------- 16-bit storage layouts
# Each in the layout it names, whatever --dtype says; beside nnfast: PyTorch on the same
# layout where it has one, DeepSpeed's CPU Adam where it keeps that layout, and
# ``nnfast_fp32``, nnfast's own float32 step on the same values (the "x fp32" column).

def _torch_view(a):
    """A tensor sharing a's memory (a bfloat16 array through its bits: torch.from_numpy
    takes no ml_dtypes array)."""
    if a.dtype == bfloat16:
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _values(rng, n, dtype, scale=1.0):
    return tiled_randn(rng, n, np.float32, scale).astype(dtype)


def _adam_layout(states_dtype, master=""):
    """Adam at step 10 on bfloat16 params and grads with states of states_dtype, the
    params' float32 master held as master_params ("masters"), as int16 remainders
    ("remainders") or not at all ("")."""
    def make(n, rng):
        def build(impl):
            if impl == "nnfast_fp32":
                p, g = _values(rng, n, np.float32), _values(rng, n, np.float32, 1e-2)
                m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
                return lambda: nnfast.adam_step(p, g, m, v, step=10)
            p, g = _values(rng, n, bfloat16), _values(rng, n, bfloat16, 1e-2)
            if impl == "torch":
                return _torch_adam_layout(p, g, states_dtype, master)
            if impl == "deepspeed":
                t = _torch_view(p).requires_grad_(False)
                t.grad = _torch_view(g)
                return deepspeed_optimizers()["DeepSpeedCPUAdam"]([t]).step
            m, v = np.zeros(n, states_dtype), np.zeros(n, states_dtype)
            storage = {}
            if master == "masters":
                storage["master_params"] = p.astype(np.float32)
            elif master == "remainders":
                storage["param_remainders"] = np.zeros(n, np.int16)
            return lambda: nnfast.adam_step(p, g, m, v, step=10, **storage)
        inputs = Inputs(n, format_count(n), {"nnfast": build("nnfast")})
        if not master:
            inputs.calls["nnfast_fp32"] = build("nnfast_fp32")
        if torch is not None and (master or np.dtype(states_dtype) == bfloat16):
            inputs.calls["torch"] = build("torch")
            inputs.paths["torch"] = "copy+fused+copy" if master else "fused"
        if (torch is not None and not master and np.dtype(states_dtype) == np.float32
                and deepspeed_optimizers() is not None):
            inputs.calls["deepspeed"] = build("deepspeed")
            inputs.paths["deepspeed"] = "DeepSpeedCPUAdam"
        return inputs
    return make


def _torch_adam_layout(p, g, states_dtype, master):
    """PyTorch on the layout: fused Adam on the bfloat16 params (states in their dtype);
    with a master, the sequence a mixed-precision loop runs: the bf16 gradient copied into
    the float32 master's .grad, fused float32 Adam, the master copied back to bf16."""
    params, grads = _torch_view(p), _torch_view(g)
    if not master:
        t = params.clone().requires_grad_()
        t.grad = grads
        return torch.optim.Adam([t], fused=True).step
    master_t = params.float().requires_grad_()
    master_t.grad = torch.empty_like(master_t)
    opt = torch.optim.Adam([master_t], fused=True)

    def step():
        master_t.grad.copy_(grads)
        opt.step()
        params.copy_(master_t.detach())
    return step


def _layout_case(name, traffic, make, layout, deepspeed=""):
    return Case(name, "optimizers", traffic, make, (1e5, 1e6, 1e7), layout=layout,
                requires=("ml_dtypes",), deepspeed=deepspeed)


def _bf16_activation(name):
    """out = f(x) on bfloat16 arrays: nnfast, torch on the same memory, nnfast on float32."""
    def make(n, rng):
        def build(impl):
            dtype = np.float32 if impl == "nnfast_fp32" else bfloat16
            x, out = _values(rng, n, dtype, 4.0), np.empty(n, dtype)
            if impl == "torch":
                fn, t_in, t_out = _TORCH_ACTIVATIONS[name], _torch_view(x), _torch_view(out)
                return lambda: fn(t_in, out=t_out)
            f = getattr(nnfast, name)
            return lambda: f(x, out=out)
        inputs = Inputs(n, format_count(n), {impl: build(impl) for impl in ("nnfast", "nnfast_fp32")})
        if torch is not None:
            inputs.calls["torch"] = build("torch")
            inputs.paths["torch"] = "aten out="
        return inputs
    return make


def _bf16_softmax_cross_entropy(n, rng, classes=1000):
    """Softmax cross-entropy and its gradient over bfloat16 logits with class ids: nnfast,
    torch's F.cross_entropy forward and backward on bfloat16, nnfast on float32."""
    rows = _rows(n, classes)
    labels = rng.integers(0, classes, rows)

    def build(impl):
        dtype = np.float32 if impl == "nnfast_fp32" else bfloat16
        logits = tiled_randn(rng, rows * classes, np.float32, 3.0).astype(dtype).reshape(rows, classes)
        if impl == "torch":
            x = _torch_view(logits).clone().requires_grad_()
            y = torch.from_numpy(labels)

            def call():
                x.grad = None
                loss = F.cross_entropy(x, y)
                loss.backward()
                return loss.item()
            return call
        grad = np.empty_like(logits)
        return lambda: nnfast.softmax_cross_entropy(logits, labels, grad_out=grad)
    inputs = Inputs(rows * classes, f"{rows} x {classes}",
                    {impl: build(impl) for impl in ("nnfast", "nnfast_fp32")})
    if torch is not None:
        inputs.calls["torch"] = build("torch")
        inputs.paths["torch"] = "autograd"
    return inputs


def _bf16_elementwise_case(name, family, make, size):
    """A bfloat16 activation or loss reading one array and writing one (2 bytes each)."""
    return Case(name, family, Traffic(1, 0, 1, (2, 2)), make, (size,), layout="bfloat16",
                requires=("ml_dtypes",))


# ---------------------------------------------------------------- the table

_ADAM = _optimizer("adam_step", step=10)

_ADAM_DS = "DeepSpeedCPUAdam"


def _activation_case(name, inputs):
    """An activation (or its backward) reading `inputs` and writing one output."""
    return Case(name, "activations", Traffic(len(inputs), 0, 1), _activation(name, inputs))


def _softmax_case(name, classes, size):
    """Softmax cross-entropy over rows of `classes` logits, against F.cross_entropy."""
    return Case(name, "losses", Traffic(1, 0, 1),
                _loss("softmax_cross_entropy", _logit_inputs(classes),
                      lambda x, y: F.cross_entropy(x, y)), (size,))


CASES = [
    Case("sgd", "optimizers", Traffic(1, 1, 0), _single(_optimizer("sgd_step", lr=1e-3))),
    Case("sgdm", "optimizers", Traffic(1, 2, 0),
         _single(_optimizer("sgdm_step", lr=1e-3, momentum=0.9))),
    Case("nesterov", "optimizers", Traffic(1, 2, 0),
         _single(_optimizer("sgdm_step", lr=1e-3, momentum=0.9, nesterov=True))),
    Case("adagrad", "optimizers", Traffic(1, 2, 0), _single(_optimizer("adagrad_step", lr=1e-2)),
         deepspeed="DeepSpeedCPUAdagrad"),
    Case("rmsprop", "optimizers", Traffic(1, 2, 0), _single(_optimizer("rmsprop_step", lr=1e-3))),
    Case("rmsprop_centered_momentum", "optimizers", Traffic(1, 4, 0),
         _single(_optimizer("rmsprop_step", ("grad_avgs", "momentum_buffers"), lr=1e-3,
                            momentum=0.9, centered=True))),
    Case("adam", "optimizers", Traffic(1, 3, 0), _single(_ADAM), (1e5, 1e6, 1e7),
         deepspeed=_ADAM_DS),
    Case("amsgrad", "optimizers", Traffic(1, 4, 0),
         _single(_optimizer("adam_step", ("max_exp_avg_sqs",), step=10, amsgrad=True))),
    Case("adamw", "optimizers", Traffic(1, 3, 0), _single(_optimizer("adamw_step", step=10)),
         deepspeed=_ADAM_DS),
    Case("nadam", "optimizers", Traffic(1, 3, 0),
         _single(_optimizer("nadam_step", step=10, mu_product=0.45**10))),
    Case("radam", "optimizers", Traffic(1, 3, 0), _single(_optimizer("radam_step", step=10))),
    # three passes: the global norm reads g; the trust-ratio sums read p, g, m, v; the
    # update reads g and updates p, m, v: 12 accesses, 48 bytes per float32 element
    Case("lamb", "optimizers", Traffic(6, 3, 0, passes=(Traffic(1, 0, 0), Traffic(4, 0, 0),
                                                        Traffic(1, 3, 0))),
         _single(_optimizer("lamb_step", step=10)), (1e7,)),
    Case("lion", "optimizers", Traffic(1, 2, 0), _single(_optimizer("lion_step", lr=1e-4)),
         (1e5, 1e6, 1e7), deepspeed="DeepSpeedCPULion"),
    Case("adamax", "optimizers", Traffic(1, 3, 0),
         _single(_optimizer("adamax_step", step=10, lr=2e-3)), (1e7,)),
    Case("adadelta", "optimizers", Traffic(1, 3, 0),
         _single(_optimizer("adadelta_step", lr=1.0)), (1e7,)),
    # three passes: the sums of g'^2 (rows, columns) and p^2 read g and p; the sum of u^2
    # reads g; the update reads g and updates p (the row and column moments are O(rows +
    # cols)): 24 bytes per float32 element
    Case("adafactor", "optimizers", Traffic(4, 1, 0, passes=(Traffic(2, 0, 0), Traffic(1, 0, 0),
                                                             Traffic(1, 1, 0))),
         _adafactor, (1e7,)),
    Case("adam_list200", "optimizers", Traffic(1, 3, 0), _tensor_list(_ADAM), (1e7,),
         deepspeed=_ADAM_DS),
    Case("adam_gpt2small", "optimizers", Traffic(1, 3, 0), _model_adam, (sum(_GPT2_SMALL),),
         requires=("torch",)),
    # the norm pass reads g, the clip pass reads and writes it: 12 bytes per float32 element,
    # the traffic of one array read and one updated
    Case("clip_grad_norm_gpt2small", "optimizers", Traffic(1, 1, 0), _model_clip, (1e7,)),
    # the norm pass reads g; the step reads and writes g (stored unscaled, as torch's fused
    # step leaves it), p, m, v: 36 bytes per float32 element
    Case("adam_amp", "optimizers", Traffic(1, 4, 0),
         lambda n, dtype, rng: _amp_adam(n, rng, torch.from_numpy(np.empty(0, dtype)).dtype),
         (1e6, 1e7),
         requires=("torch",)),
    # the same on bfloat16 params, grads and states: 18 bytes
    Case("adam_amp_bf16", "optimizers", Traffic(1, 4, 0, (2, 2, 2, 2, 2)),
         lambda n, rng: _amp_adam(n, rng, torch.bfloat16), (1e6, 1e7), requires=("torch",),
         layout="bfloat16"),
    # reads g; updates p, m, v (2, 2, 2, 2 bytes per element: 14 in all)
    _layout_case("adam_bf16", Traffic(1, 3, 0, (2, 2, 2, 2)), _adam_layout(bfloat16), "bfloat16"),
    # reads g; updates p (2 bytes), m, v (4): 22
    _layout_case("adam_bf16_f32_states", Traffic(1, 3, 0, (2, 2, 4, 4)),
                 _adam_layout(np.float32), "bf16+f32 states", deepspeed=_ADAM_DS),
    # reads g (2); updates master, m, v (4); writes p (2): 28
    _layout_case("adam_bf16_masters", Traffic(1, 3, 1, (2, 4, 4, 4, 2)),
                 _adam_layout(np.float32, "masters"), "bf16+f32 master"),
    # reads g (2); updates p (2), remainder (2), m, v (4): 26
    _layout_case("adam_bf16_remainders", Traffic(1, 4, 0, (2, 2, 2, 4, 4)),
                 _adam_layout(np.float32, "remainders"), "bf16+int16 rem."),
    _bf16_elementwise_case("relu_bf16", "activations", _bf16_activation("relu"), 1e7),
    _bf16_elementwise_case("leaky_relu_bf16", "activations", _bf16_activation("leaky_relu"), 1e7),
    _bf16_elementwise_case("sigmoid_bf16", "activations", _bf16_activation("sigmoid"), 1e7),
    _bf16_elementwise_case("tanh_bf16", "activations", _bf16_activation("tanh"), 1e7),
    _bf16_elementwise_case("softmax_cross_entropy_bf16", "losses", _bf16_softmax_cross_entropy,
                           4.096e6),
    _activation_case("sigmoid", ["x"]),
    _activation_case("sigmoid_backward", ["y_sigmoid", "dy"]),
    _activation_case("tanh", ["x"]),
    _activation_case("tanh_backward", ["y_tanh", "dy"]),
    _activation_case("relu", ["x"]),
    _activation_case("relu_backward", ["x", "dy"]),
    _activation_case("leaky_relu", ["x"]),
    _activation_case("leaky_relu_backward", ["x", "dy"]),
    Case("mse_loss", "losses", Traffic(2, 0, 1),
         _loss("mse_loss", _mse_inputs, lambda x, t: F.mse_loss(x, t))),
    Case("cross_entropy", "losses", Traffic(2, 0, 1),
         _loss("cross_entropy", _probability_inputs, _torch_cross_entropy_on_probs)),
    _softmax_case("softmax_cross_entropy", 1000, 4.096e6),
    _softmax_case("softmax_cross_entropy_32k", 32000, 1.6384e7),
    _softmax_case("softmax_cross_entropy_10", 10, 655360),
    Case("l1_loss", "losses", Traffic(1, 0, 0),
         _regularizer("l1_loss", lambda t: torch.linalg.vector_norm(t, 1))),
    Case("l2_loss", "losses", Traffic(1, 0, 0),
         _regularizer("l2_loss", lambda t: torch.linalg.vector_norm(t).square() / 2)),
]

BY_NAME = {case.name: case for case in CASES}
