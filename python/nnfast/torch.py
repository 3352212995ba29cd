r"""``torch.optim`` optimizers whose step runs nnfast's kernels on the tensors' own memory.

``SGD``, ``Adagrad``, ``RMSprop``, ``Adam``, ``AdamW``, ``NAdam``, ``RAdam``, ``Adamax``,
``Adadelta`` and ``Adafactor`` here are subclasses of ``torch.optim.Optimizer`` with torch's
constructor arguments and defaults (``LAMB`` with apex FusedLAMB's, ``Lion`` with
lion-pytorch's), ``param_groups`` with per-group hyperparameters, ``add_param_group``,
``zero_grad``, ``step(closure=None)`` and torch's own ``state_dict()`` format (the same
state keys, and ``step`` as torch stores it), so switching is one line::

    optimizer = nnfast.torch.Adam(model.parameters(), lr=1e-3)   # was torch.optim.Adam

``LAMB`` (torch has none) takes apex ``FusedLAMB``'s arguments and defaults and keeps
torch's state format (a ``step`` per parameter).

LR schedulers (``torch.optim.lr_scheduler``) work unchanged; a checkpoint saved from
``torch.optim.Adam`` loads into ``nnfast.torch.Adam`` and continues, and the reverse; each
works as the ``optimizer_class`` of ``torch.distributed.optim.ZeroRedundancyOptimizer``.

How a step runs. For each param group, the parameters that have a ``.grad`` (others are
skipped, as torch skips them) are updated by the fused multi-tensor kernels of
:mod:`nnfast.functional` in one call per group: more only when a group mixes devices or
dtypes (each parameter's own step count goes to the kernel, which derives its bias
corrections per tensor). The kernels work on the tensors' memory in
place, with no copy: a CPU tensor is passed as the NumPy view ``tensor.numpy()`` that shares
its memory, a CUDA tensor as itself (``nnfast.functional`` takes GPU arrays, on torch's
current stream), a complex tensor as its real view, as torch updates it. They use nnfast's
threads (``nnfast.set_num_threads``), not torch's. The arithmetic is that of ``nnfast.optim``,
whose classes' docstrings give each update as math: torch's formulas and defaults, float32
computed in float32 with the hyperparameters rounded to float32. torch orders some roundings
differently (Adam's first moment through ``lerp``, the division through ``addcdiv``), so the
results agree with ``torch.optim`` to a few units in the last place per step, not bit for bit.

torch's implementation switches: ``foreach`` and ``fused`` choose among torch's own
implementations; nnfast has one (fused, multi-tensor), so they are accepted and kept in
``param_groups`` (a checkpoint keeps them for torch) and change nothing here.
``capturable=True`` (CUDA graph capture) and ``differentiable=True`` (autograd through the
step) cannot be honoured by kernels that run outside autograd and read the step count on the
host: they raise ``ValueError``. A tensor ``lr`` (or betas, weight decay) is read as its
Python number at each step.

What torch's constructors refuse, these refuse with the same exception type, so that no
configuration that fails under ``torch.optim`` runs here (the tests check every error input of
torch's own optimizer test database, ``optim_db``): ``params`` given as one tensor
(TypeError), a parameter in two groups (ValueError); a tensor ``lr`` or tensor betas with
``foreach=True`` and ``capturable=False`` for Adam and AdamW, and betas that are not both
floats or both tensors (ValueError); ``fused=True`` with ``differentiable=True`` or
``foreach=True`` (RuntimeError). Like torch, a step with ``fused=True`` refuses complex
parameters (RuntimeError). nnfast refuses more where its kernels cannot honour an input:
``capturable``, ``differentiable``, and hyperparameters that are not finite (below).

Every step is checked whole before anything is written (parameters, states, step counts):
each group's hyperparameters, and each parameter, gradient and state tensor. Errors name the
group and parameter:
    TypeError: a sparse gradient or parameter (no nnfast kernel takes one; torch's
        ``SparseAdam`` does); a parameter whose dtype is not float32, float64, bfloat16,
        float16 (or complex64/complex128); a gradient or state tensor whose dtype is not its
        role's (the parameter's, or as the storage options below say); a parameter not on
        the CPU or a CUDA device.
    ValueError: a hyperparameter out of range (negative ``lr``, a beta outside [0, 1), ...)
        or not finite in the dtype its parameters are computed in (``inf``; ``1e39`` for
        float32 and complex64 parameters, computed in float32); a gradient or state tensor
        whose shape or device differs from its parameter's; a state tensor missing (e.g.
        ``amsgrad`` switched on after the first step), or a stored ``step`` that is not a
        one-element tensor holding an integer >= 0; a state tensor laid out otherwise than
        its parameter (strides); a parameter twice in one group, or
        a gradient that is a parameter's memory (the kernels update each parameter once,
        apart from the tensors they read); ``capturable`` or ``differentiable``.
    RuntimeError: a complex parameter in a group with ``fused=True`` (as torch).
These checks include the kernels' own, made for the whole step before its first kernel call
(the kernels check each call whole too; the states and step counts of a call they refused
would be left as they were).

Memory layouts. A parameter in channels_last or any other dense, non-overlapping layout (a
transpose) is updated in its own memory: an elementwise step runs over the memory block, its
states are created with the parameter's strides. A gradient in another layout is read
through a copy in the parameter's. A parameter with gaps in its memory (a strided slice) is
updated through a contiguous copy that is copied back (correct, slower).

Mixed precision with ``torch.amp.GradScaler``: every optimizer here says
``_step_supports_amp_scaling``, so ``scaler.step(optimizer)`` hands it the scale and the
inf flag instead of unscaling the gradients itself, as it does for torch's fused optimizers.
The step folds the unscaling into its one pass (each gradient times 1/scale, exact for the
scaler's powers of two) and leaves ``.grad`` unscaled, as torch's fused optimizers leave it;
a step whose gradients hold an inf or NaN is skipped whole: nothing is written, ``.grad``
stays scaled, the step counts stay (a parameter's first step still creates its state, step 0,
as torch's fused Adam does; SGD's momentum buffer is created by its first step that runs).
``scaler.unscale_(optimizer)`` before the step (to clip by hand) works as with torch. The
flag is read on the host: for CUDA parameters that is one sync per step.

16-bit parameters and storage options: bfloat16 and float16 parameters are stepped with
``torch.optim.Adam(fused=True)``'s semantics (states in the parameter's dtype, math in float32)
unless the keyword options beyond torch say otherwise: ``master_weights`` (float32 masters in
the state, ``"master_param"``), ``store_param_remainders`` (bfloat16 parameters: int16
``"param_remainder"``; float16 ones get masters), ``state_dtype`` (None, ``torch.float32`` or
``torch.bfloat16``; float64 parameters keep float64 states) and ``stochastic_rounding`` (its
seed drawn from torch's default generator at construction). Each is a group key, present
only when set (so without them the groups and checkpoints are exactly torch's), and applies
to the group's 16-bit parameters; :mod:`nnfast.optim` documents each.
"""

from __future__ import annotations

import math
import types
import warnings

import numpy as np
import torch
from ml_dtypes import bfloat16

from . import _core
from . import optim as _numpy_optim
from . import functional as _kernels
from . import gradients as _gradients

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "RAdam", "LAMB", "Lion",
           "Adamax", "Adadelta", "Adafactor", "GradScaler", "clip_grad_norm_"]

_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16, torch.complex64,
           torch.complex128)
_FLAGS = ("nesterov", "maximize", "centered", "amsgrad", "decoupled_weight_decay")
#: The numeric hyperparameters, which torch lets be one-element tensors (a group may hold other
#: keys of the user's, such as a name, left as they are).
_NUMBERS = ("lr", "momentum", "dampening", "weight_decay", "lr_decay",
            "initial_accumulator_value", "eps", "alpha", "momentum_decay", "rho",
            "beta2_decay", "d")
_COMPUTED_IN_FLOAT32 = (torch.float32, torch.bfloat16, torch.float16, torch.complex64)
_HALF = (torch.bfloat16, torch.float16)
_COMPLEX = (torch.complex64, torch.complex128)
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.bfloat16: bfloat16,
                 torch.float16: np.float16}
_TORCH_DTYPES = {np.dtype(v): k for k, v in (*_NUMPY_DTYPES.items(), (torch.int16, np.int16))}
#: nnfast's storage options (beyond torch), as group keys with their defaults: what a group
#: without them (torch's, or a torch checkpoint's) means.
_PRECISION = {"master_weights": False, "store_param_remainders": False, "state_dtype": None,
              "stochastic_rounding": False, "seed": None}


def _precision(master_weights, store_param_remainders, state_dtype, stochastic_rounding):
    """The storage options that differ from their defaults, as group keys (so that with none
    the groups, and a checkpoint, are exactly torch's); a stochastic-rounding seed is drawn
    from torch's default generator (``torch.manual_seed`` reproduces it) and kept there."""
    seed = int(torch.randint(0, 2**63 - 1, ()).item()) if stochastic_rounding else None
    given = dict(master_weights=master_weights, store_param_remainders=store_param_remainders,
                 state_dtype=state_dtype, stochastic_rounding=stochastic_rounding, seed=seed)
    return {k: v for k, v in given.items() if v != _PRECISION[k]}


def _for_dtype(hp, dtype):
    """A group's hyperparameters for its parameters of ``dtype``: the storage options apply
    to 16-bit parameters (remainders to bfloat16 ones; float16 ones then get float32
    masters); float64 parameters keep float64 states."""
    if dtype in _HALF:
        if hp["store_param_remainders"] and dtype == torch.float16:
            return dict(hp, store_param_remainders=False, master_weights=True)
        return hp
    plain = dict(hp, master_weights=False, store_param_remainders=False,
                 stochastic_rounding=False)
    if dtype in (torch.float64, torch.complex128):
        plain["state_dtype"] = None
    return plain


def _state_dtype(p, name, hp):
    """The dtype of the state ``name`` of ``p`` under ``hp`` (as _for_dtype gives it)."""
    if p.is_complex():  # (complex parameters take no storage options: _for_dtype)
        return p.dtype
    return _TORCH_DTYPES[_numpy_optim.state_dtype(hp, name, _NUMPY_DTYPES[p.dtype])]


def _dense(t):
    """Whether t's elements fill one block of memory, each once, in some order of its
    dimensions (contiguous, channels_last, a transpose): an elementwise kernel can then run
    over the block, as long as every operand of the element has the same strides."""
    if t.is_contiguous():
        return True
    expected = 1
    for size, stride in sorted(zip(t.shape, t.stride()), key=lambda d: d[1]):
        if size != 1:
            if stride != expected:
                return False
            expected *= size
    return True


def _layout(p):
    """The strides every operand of parameter p must have: p's own when it is dense, else
    those of the contiguous copy the step updates (see _KernelOptimizer.step)."""
    if _dense(p):
        return p.stride()
    return torch.empty(p.shape, device="meta").stride()


def _memory(tensor):
    """What the kernels update in place: the tensor's own memory, never a copy (a NumPy view
    of a CPU tensor; a CUDA tensor itself; a complex tensor as its real view; a dense
    non-contiguous tensor as its block of memory, flat, in memory order)."""
    if tensor.requires_grad:  # only then: detach() costs as much as the view itself
        tensor = tensor.detach()  # (the kernels refuse to write a tensor autograd tracks)
    if not tensor.is_contiguous():
        tensor = tensor.as_strided((tensor.numel(),), (1,))
    if tensor.is_complex():
        tensor = torch.view_as_real(tensor)
    if tensor.is_cuda:
        return tensor
    if tensor.dtype == torch.bfloat16:  # NumPy has no bfloat16: ml_dtypes' view of the bits
        return tensor.view(torch.int16).numpy().view(bfloat16)
    return tensor.numpy()


def _increment_versions(tensors):
    """autograd's version bump of each tensor: one call for the list from torch 2.5
    (pytorch#132652), one per tensor before."""
    if _VERSIONS_AS_LIST:
        torch.autograd.graph.increment_version(tensors)
    else:
        for t in tensors:
            torch.autograd.graph.increment_version(t)


_VERSIONS_AS_LIST = torch.__version__ >= (2, 5)


def _number(value, name):
    """A hyperparameter as a Python number: a one-element tensor is read (torch allows them)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name}: a tensor hyperparameter must have one element, "
                             f"got shape {tuple(value.shape)}")
        return value.item()
    return value


def _check_finite(hp, dtypes, where):
    """Raise ValueError unless every numeric hyperparameter in ``hp`` is finite, and stays
    finite rounded to each dtype the kernels compute in for parameters of ``dtypes``
    (float32 for float32 and complex64, else float64): the kernels' own rule, asked of them
    before any group is updated."""
    check = (_core.check_real_float32 if any(d in _COMPUTED_IN_FLOAT32 for d in dtypes)
             else _core.check_real)
    named = [(key, hp[key]) for key in _NUMBERS if key in hp and not isinstance(hp[key], tuple)]
    named += [(f"betas[{i}]", beta) for i, beta in enumerate(hp.get("betas", ()))]
    if isinstance(hp.get("eps"), tuple):  # Adafactor's pair (eps1 may be None)
        named += [(f"eps[{i}]", e) for i, e in enumerate(hp["eps"]) if e is not None]
    for name, value in named:
        try:
            check(value, name)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None


def _stored_count(count, what):
    """The number of steps a state's ``step`` holds: a one-element tensor with an integer
    value >= 0 (ValueError naming ``what`` otherwise)."""
    if isinstance(count, torch.Tensor) and count.numel() == 1:
        value = count.item()
        if value >= 0 and float(value).is_integer():
            return int(value)
    raise ValueError(f"{what} must be a one-element tensor holding an integer >= 0, got "
                     f"{count!r}")


def _step_tensor(p, group, value=0.0):
    """The step count as torch keeps it: a float32 scalar on the parameter's device when
    fused (or capturable), else a CPU scalar of torch's default scalar dtype."""
    if group.get("fused") or group.get("capturable"):
        return torch.tensor(float(value), dtype=torch.float32, device=p.device)
    dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    return torch.tensor(float(value), dtype=dtype)


def _unlike(t, p, what, dtype=None, shape=None, strides=None):
    """The error that says how ``t`` differs from parameter ``p``, which it must match in
    shape and device (and dtype, or ``dtype`` where given), and be laid out alike; or, where
    given, have ``shape`` and ``strides`` (a state not shaped like its parameter)."""
    dtype = p.dtype if dtype is None else dtype
    if not isinstance(t, torch.Tensor):
        return TypeError(f"{what} must be a tensor, got {type(t).__name__}")
    if t.dtype != dtype:
        return TypeError(f"{what} has dtype {t.dtype}, expected {dtype} (its parameter's is "
                         f"{p.dtype})")
    if shape is not None and t.shape != shape:
        return ValueError(f"{what} has shape {tuple(t.shape)}, expected {tuple(shape)} for "
                          f"its parameter of shape {tuple(p.shape)}")
    if t.shape != p.shape and shape is None:
        return ValueError(f"{what} has shape {tuple(t.shape)}, its parameter {tuple(p.shape)}")
    if t.device != p.device:
        return ValueError(f"{what} is on {t.device}, its parameter on {p.device}")
    if strides is not None:
        return ValueError(f"{what} has strides {t.stride()}, expected {strides} (C order)")
    return ValueError(f"{what} has strides {t.stride()}, its parameter's layout "
                      f"{_layout(p)} (every operand of an element is laid out alike)")


class _KernelOptimizer(torch.optim.Optimizer):
    """The machinery the optimizers of this module share (see the module docstring).

    A subclass sets ``_arithmetic``, the ``nnfast.optim`` class whose ``_validate`` checks the
    hyperparameters and whose ``_apply`` makes the kernel calls, and ``_fallbacks``, the group
    keys an older checkpoint may lack with the values torch then assumes;
    :meth:`_counts_steps` says where a step count is kept.
    """

    _arithmetic = None
    _fallbacks = {}
    #: Whether the update is elementwise: a dense parameter in any layout (a transpose,
    #: channels_last) is then updated over its block of memory, its states laid out alike.
    #: A step that is not (Adafactor's row and column sums) runs every parameter in C order,
    #: through a contiguous copy where it is not contiguous, its states contiguous.
    _elementwise = True
    # torch.amp.GradScaler.step hands optimizers that say so its scale and inf flag as the
    # attributes grad_scale and found_inf, and leaves the unscaling to their step.
    _step_supports_amp_scaling = True

    def __init__(self, params, defaults, max_grad_norm=None):
        # torch's order: the hyperparameters, its constructor-only rules, then the params
        # (torch.optim.Optimizer), whose groups add_param_group checks whole.
        self._hyperparameters(defaults, "")
        self._check_constructor_rules(defaults)
        if max_grad_norm is not None:
            _core.check_nonnegative(max_grad_norm, "max_grad_norm")
        super().__init__(params, defaults)
        self.max_grad_norm = max_grad_norm
        #: The norm of the unscaled gradients of the last step, with ``max_grad_norm``.
        self.last_grad_norm = None

    @classmethod
    def _check_constructor_rules(cls, defaults):
        """What torch's constructor refuses beyond value ranges (it applies these to its own
        arguments, not to param groups): ``fused`` with ``differentiable`` or ``foreach``."""
        if defaults.get("fused"):
            if defaults.get("differentiable"):
                raise RuntimeError(f"`fused` does not support `differentiable` (as in "
                                   f"torch.optim.{cls.__name__})")
            if defaults.get("foreach"):
                raise RuntimeError(f"`fused` and `foreach` cannot be `True` together (as in "
                                   f"torch.optim.{cls.__name__})")

    def __getstate__(self):
        return {**super().__getstate__(), "max_grad_norm": self.max_grad_norm}

    def __setstate__(self, state):
        # Called by load_state_dict (and unpickling): fill what an older checkpoint lacks,
        # and turn a plain-number step into the tensor torch keeps, as torch's own do.
        self.__dict__.setdefault("max_grad_norm", None)
        self.__dict__.setdefault("last_grad_norm", None)
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self._fallbacks.items():
                group.setdefault(key, value)
            for p in group["params"]:
                st = self.state.get(p)
                if st and "step" in st and not torch.is_tensor(st["step"]):
                    st["step"] = _step_tensor(p, group, st["step"])

    def load_state_dict(self, state_dict):
        """torch's ``load_state_dict``, keeping each saved state tensor's dtype.

        torch casts every floating-point state tensor to its parameter's dtype; the float32
        masters, int16 remainders and float32 states of nnfast's storage options must keep
        theirs (a master cast to bfloat16 and back would lose its low half), so they are
        copied again from the checkpoint, as saved, onto the parameter's device.
        """
        super().load_state_dict(state_dict)
        saved_ids = [i for g in state_dict["param_groups"] for i in g["params"]]
        params = [p for g in self.param_groups for p in g["params"]]
        for param_id, p in zip(saved_ids, params):
            for key, value in state_dict["state"].get(param_id, {}).items():
                loaded = self.state[p].get(key)
                if (key != "step" and isinstance(value, torch.Tensor)
                        and isinstance(loaded, torch.Tensor) and loaded.dtype != value.dtype):
                    self.state[p][key] = value.to(device=p.device, copy=True)

    def add_param_group(self, param_group):
        """Add a param group (torch's ``add_param_group``), checked as :meth:`step` checks it.

        Raises:
            TypeError, ValueError: as :meth:`step` would (a hyperparameter is checked for
                the dtypes of all the group's parameters); the group is then not added.
        """
        super().add_param_group(param_group)
        index = len(self.param_groups) - 1
        try:
            group = self.param_groups[index]
            where = f"param_groups[{index}]"
            hp = self._check_group(group, where)
            for j, p in enumerate(group["params"]):
                self._check_param(p, f"{where}['params'][{j}]")
            _check_finite(hp, {p.dtype for p in group["params"]}, where)
        except (TypeError, ValueError):
            self.param_groups.pop()
            raise

    # -- checks

    def _check_group(self, group, where):
        """The group's hyperparameters as :meth:`_hyperparameters` gives them, after
        refusing ``capturable`` and ``differentiable``; errors start with ``where``."""
        for option in ("capturable", "differentiable"):
            if group.get(option):
                raise ValueError(f"{where}: {option}=True is not supported by nnfast.torch "
                                 f"(its kernels run outside autograd and CUDA graphs); use "
                                 f"torch.optim for it")
        return self._hyperparameters(group, where)

    def _hyperparameters(self, group, where):
        """The group's hyperparameters as nnfast.optim takes them (plain numbers, l1 = 0),
        checked by nnfast.optim's own validation; errors start with ``where``."""
        prefix = f"{where}: " if where else ""
        hp = {key: value for key, value in group.items() if key != "params"}
        for key in _NUMBERS:
            if key in hp:
                hp[key] = _number(hp[key], prefix + key)
        if "betas" in hp:
            hp["betas"] = tuple(_number(b, prefix + "betas") for b in hp["betas"])
        for flag in _FLAGS:
            if flag in hp:
                hp[flag] = bool(hp[flag])
        hp["l1"] = 0.0
        for key, value in _PRECISION.items():
            hp.setdefault(key, value)
        state_dtype = hp["state_dtype"]
        if state_dtype is not None:
            if state_dtype not in (torch.float32, torch.bfloat16):
                raise TypeError(f"{prefix}state_dtype: None (the parameter's dtype), "
                                f"torch.float32 or torch.bfloat16, got {state_dtype!r}")
            hp["state_dtype"] = np.dtype(_NUMPY_DTYPES[state_dtype])
        try:
            self._arithmetic._validate(hp)
            for dtype in _HALF:
                _numpy_optim.check_precision(_for_dtype(hp, dtype), _NUMPY_DTYPES[dtype])
        except (TypeError, ValueError) as error:
            raise type(error)(prefix + str(error)) from None
        return hp

    @staticmethod
    def _check_param(p, where):
        if p.dtype in _DTYPES and (p.is_cpu or p.is_cuda) and p.layout == torch.strided:
            return
        if p.dtype not in _DTYPES:
            raise TypeError(f"{where}: nnfast's kernels update float32, float64, bfloat16 and "
                            f"float16 tensors (complex ones through their real view), got "
                            f"{p.dtype}")
        if not (p.is_cpu or p.is_cuda):
            raise TypeError(f"{where}: nnfast.torch updates CPU and CUDA tensors, got one on "
                            f"{p.device}")
        raise TypeError(f"{where} is a {p.layout} tensor: nnfast.torch updates dense (strided) "
                        f"parameters")

    def _plan(self, index, group):
        """Check one group whole and return (hyperparameters, [(param, grad, step)]) for the
        parameters that have a gradient, ``step`` this step's count (for SGD, which keeps
        none: 1 on the momentum buffer's first step, else 2); nothing is created or
        written."""
        where = f"param_groups[{index}]"
        hp = self._check_group(group, where)
        work = []
        # A kernel call updates each memory once and refuses a call that names it twice, or
        # reads what it updates: (device, dtype, address) of each parameter updated -> its
        # position in the group, and each gradient's (position, parameter, address).
        updated, read = {}, []
        fused = group.get("fused")
        state = self.state
        for j, p in enumerate(group["params"]):
            g = p.grad
            if g is None:
                continue
            self._check_param(p, f"{where}['params'][{j}]")
            if fused and p.is_complex():
                raise RuntimeError(f"{where}['params'][{j}] is complex ({p.dtype}): "
                                   f"`fused=True` takes real floating-point parameters, as in "
                                   f"torch.optim.{type(self).__name__}")
            if g.layout != torch.strided:
                raise TypeError(f"{where}['params'][{j}].grad is sparse ({g.layout}): nnfast's "
                                f"kernels take dense gradients (torch.optim.SparseAdam takes "
                                f"sparse ones)")
            shape, dtype, device = p.shape, p.dtype, p.device
            if not (g.shape == shape and g.dtype == dtype and g.device == device):
                raise _unlike(g, p, f"{where}['params'][{j}].grad")
            address = (device, dtype, p.data_ptr())
            if address in updated and p.numel():  # (empty tensors may share an address)
                raise ValueError(f"{where}['params'][{j}] is the memory of "
                                 f"{where}['params'][{updated[address]}] again: nnfast's "
                                 f"kernels update each parameter once per step (torch warns "
                                 f"of duplicate parameters and updates them twice)")
            updated[address] = j
            st = state.get(p)
            if st:  # a state from an earlier step or a loaded checkpoint
                p_hp = _for_dtype(hp, dtype)
                names = self._state_names_of(p_hp, p)
                required = names + ["step"] if self._counts_steps(p_hp) else names
                for name in required:
                    if name not in st:
                        raise ValueError(f"the state of {where}['params'][{j}] has no {name!r} "
                                         f"(was the group's configuration changed after its "
                                         f"first step?)")
                for name in names:
                    t = st[name]
                    want = _state_dtype(p, name, p_hp)
                    want_shape = self._state_shape(p, name)
                    layout = self._state_strides(p, name)
                    if not (isinstance(t, torch.Tensor) and t.shape == want_shape
                            and t.dtype == want and t.device == device and t.stride() == layout):
                        raise _unlike(t, p, f"the state {name!r} of {where}['params'][{j}]", want,
                                      *((want_shape, layout) if not self._elementwise else ()))
                step = (_stored_count(st["step"], f"the state 'step' of {where}['params'][{j}]")
                        + 1 if self._counts_steps(p_hp) else 2)
            else:
                step = 1
            if g.stride() != self._runs_in(p):  # read through a copy in the parameter's layout
                g = g.contiguous() if not self._in_place(p) else torch.empty_like(p).copy_(g)
            work.append((p, g, step))
            read.append((j, p, (device, dtype, g.data_ptr())))
        for j, p, address in read:
            k = updated.get(address)
            if k is not None and p.numel():
                raise ValueError(f"{where}['params'][{j}].grad shares memory with "
                                 f"{where}['params'][{k}], which the step updates in place")
        _check_finite(hp, {p.dtype for p, _, _ in work}, where)
        return hp, work

    # -- state, torch's format

    def _counts_steps(self, hp):
        """Whether a parameter's state keeps ``step`` under ``hp`` (a group, or its dtype's
        hyperparameters)."""
        return True

    def _state_names(self, hp):
        """The state tensors of a parameter under ``hp`` (its dtype's, _for_dtype)."""
        return self._arithmetic._state_names(hp) + _numpy_optim.precision_state_names(hp)

    def _state_names_of(self, hp, p):
        """The state tensors of parameter ``p`` under ``hp``: :meth:`_state_names`, unless
        they depend on the parameter (Adafactor's on its dims)."""
        return self._state_names(hp)

    def _state_shape(self, p, name):
        """The shape of the state ``name`` of ``p``: ``p``'s, unless a class says otherwise."""
        return p.shape

    def _in_place(self, p):
        """Whether the kernels update ``p``'s own memory (else a contiguous copy of it)."""
        return _dense(p) if self._elementwise else p.is_contiguous()

    def _runs_in(self, p):
        """The strides the kernels see ``p`` (and its gradient) with."""
        return _layout(p) if self._elementwise else torch.empty(p.shape, device="meta").stride()

    def _state_strides(self, p, name):
        """The strides the state ``name`` of ``p`` must have: ``p``'s layout, or C order
        where the step is not elementwise."""
        if self._elementwise:
            return _layout(p)
        return torch.empty(self._state_shape(p, name), device="meta").stride()

    def _initial_state(self, p, name, dtype):
        if name == "master_param":
            return p.detach().to(torch.float32, memory_format=torch.preserve_format, copy=True)
        return torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)

    def _pending_state(self, p, names, hp):
        """What this step updates of ``p``'s state, nothing stored yet: (tensors, new).

        ``tensors`` maps each state name to its tensor: the stored one, or on ``p``'s first
        step a new one holding torch's initial value; ``new`` is True when
        :meth:`_store_state` must store the state (torch keeps none for SGD without
        momentum)."""
        st = self.state.get(p)
        if st:  # from an earlier step, a loaded checkpoint, or Adagrad's constructor
            return {name: st[name] for name in names}, False
        tensors = {name: self._initial_state(p, name, _state_dtype(p, name, hp)) for name in names}
        return tensors, bool(names) or self._counts_steps(hp)

    def _store_state(self, p, group, tensors, step, new):
        """Store what :meth:`_pending_state` gave once the kernels have run: a new state in
        torch's key order, or the step count (torch's ``step += 1``; ``fill_`` costs a third
        of an in-place add on a scalar tensor)."""
        if new:
            st = self.state[p]
            if self._counts_steps(group):
                st["step"] = _step_tensor(p, group, step)
            st.update(tensors)
        elif self._counts_steps(group):
            self.state[p]["step"].fill_(step)

    # -- the step

    def _grad_scaling(self, plans):
        """The kernels' gradient-scaling options for this step, per dtype of its parameters,
        and whether the step is skipped.

        ``torch.amp.GradScaler.step`` hands the step ``grad_scale`` S and ``found_inf``: the
        kernels multiply each gradient by 1/S and store it back, as torch's fused optimizers
        leave the unscaled gradient in ``.grad`` (1/S is exact for the powers of two
        GradScaler uses, so the results are torch's bits of g/S); a nonzero ``found_inf``
        skips the step. :class:`GradScaler` asks the step to find infs itself
        (``_finds_inf``): then, and with ``max_grad_norm``, one read pass over every
        gradient takes the norm of the unscaled gradients; an inf or NaN in it sets
        ``found_inf``, and ``max_grad_norm`` multiplies 1/S by torch's clip coefficient
        ``min(1, max_grad_norm / (norm + 1e-6))`` (computed in each dtype's compute type).
        The flag is read on the host (on a GPU, a sync: nnfast.torch counts steps there)."""
        grad_scale = getattr(self, "grad_scale", None)
        found_inf = getattr(self, "found_inf", None)
        finds_inf = getattr(self, "_finds_inf", False)
        unscale = 1.0 if grad_scale is None else 1.0 / float(grad_scale)
        dtypes = {p.dtype for _, work in plans for p, _, _ in work}
        coefficients = dict.fromkeys(dtypes, 1.0)
        skipped = found_inf is not None and not finds_inf and bool(found_inf.item() != 0)
        if not skipped and (self.max_grad_norm is not None or finds_inf):
            total = self._grad_norm(plans, unscale)
            if finds_inf and not math.isfinite(total):
                found_inf.fill_(1.0)
                skipped = True
            elif self.max_grad_norm is not None:
                if math.isnan(total):
                    raise RuntimeError("max_grad_norm: the norm of the gradients is NaN (no "
                                       "GradScaler skips this step); nothing was written")
                self.last_grad_norm = total
                coefficients = {d: self._clip_coefficient(total, d) for d in dtypes}
        options = {d: dict(grad_scale=unscale * c, store_scaled_grads=grad_scale is not None)
                   for d, c in coefficients.items()}
        return options, skipped

    def _clip_coefficient(self, total, dtype):
        """The factor ``max_grad_norm`` makes of the norm ``total`` of the unscaled
        gradients: torch's clip coefficient, in ``dtype``'s compute type."""
        return _core.clip_coefficient(total, self.max_grad_norm, dtype == torch.float64)

    @staticmethod
    def _grad_norm(plans, scale):
        """The 2-norm of ``scale`` times every gradient of the step: one read pass, one
        kernel call per (device, dtype), combined in float64. (16-bit CUDA gradients, which
        nnfast's GPU norms do not take, through torch's own norm, summed in float32.)"""
        parts = {}
        for _, work in plans:
            for p, g, _ in work:
                parts.setdefault((g.device, g.dtype), []).append(g)
        norms = []
        for (device, dtype), grads in parts.items():
            if device.type == "cuda" and dtype in _HALF:
                per_tensor = torch._foreach_norm(grads, 2, dtype=torch.float32)
                norms.append(scale * float(torch.linalg.vector_norm(torch.stack(per_tensor))))
            else:
                norms.append(float(_gradients.grad_norm([_memory(g) for g in grads], scale=scale)))
        return math.sqrt(math.fsum(n * n for n in norms)) if len(norms) > 1 else sum(norms)

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a ``.grad``; see the module docstring.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss; it
                runs first, with gradients enabled.

        Returns:
            the closure's loss, or None.

        Raises:
            TypeError, ValueError, RuntimeError: see the module docstring; nothing is
                written then.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        plans = [self._plan(i, group) for i, group in enumerate(self.param_groups)]
        scaling, skipped = self._grad_scaling(plans)
        for group, (hp, work) in zip(self.param_groups, plans):
            parts = {}
            for p, g, step in work:  # one kernel call per (device, dtype): usually the group
                parts.setdefault((p.device, p.dtype), []).append((p, g, step))
            for (_, dtype), part in parts.items():
                part_hp = _for_dtype(hp, dtype)
                pending = [self._pending_state(p, self._state_names_of(part_hp, p), part_hp)
                           for p, _, _ in part]
                states = [dict({name: _memory(t) for name, t in tensors.items()}, step=step)
                          for (_, _, step), (tensors, _) in zip(part, pending)]
                # A parameter with gaps or overlaps in its memory is updated through a
                # contiguous copy, copied back after the kernels (slower, but correct).
                updated = [p if self._in_place(p) else p.detach().contiguous() for p, _, _ in part]
                options = _numpy_optim.storage_arguments(part_hp, states)
                if skipped:  # checked whole by the kernel, which then writes nothing
                    options["found_inf"] = _memory(torch.ones(1, device=part[0][0].device))
                self._arithmetic._apply(_kernels, part_hp, [_memory(p) for p in updated],
                                        [_memory(g) for _, g, _ in part], states, hp["lr"],
                                        {**options, **scaling[dtype]})
                for (p, g, _), copy in zip(part, updated):
                    if copy is not p:
                        p.detach().copy_(copy)
                    if scaling[dtype]["store_scaled_grads"] and not skipped and g is not p.grad:
                        p.grad.copy_(g)  # (the step read a copy in the parameter's layout)
                # Stored only once the kernels have run: a part they refuse keeps its states
                # and step counts. A skipped step keeps the counts, and the new states that
                # torch's fused step creates before it skips (SGD's momentum buffer aside:
                # torch leaves it unset, so the next step is its first).
                for (p, _, step), (tensors, new) in zip(part, pending):
                    if not skipped:
                        self._store_state(p, group, tensors, step, new)
                    elif new and self._counts_steps(part_hp):
                        self._store_state(p, group, tensors, step - 1, new)
                # Written behind autograd's back: bump the version counters as an in-place
                # torch op would, so autograd still detects stale saved values.
                _increment_versions([p for p, _, _ in part])
        return loss


class GradScaler(torch.amp.GradScaler):
    """``torch.amp.GradScaler`` whose ``step`` leaves the inf check to nnfast's optimizers.

    ``torch.amp.GradScaler.step`` reads every gradient once to find infs and NaNs before it
    calls a fused optimizer. With an optimizer of this module, this scaler instead has the
    step find them in its own read pass (the gradient norm it takes anyway with
    ``max_grad_norm``), so the optimizer phase of a step reads the gradients twice in all:
    the norm pass, then the update with unscaling (and clipping) folded in. Everything else
    is torch's: constructor, ``scale``, ``unscale_`` (after which ``step`` works as torch's),
    ``update``, ``state_dict``; other optimizers go through torch's ``step`` unchanged.

    Example::

        scaler = nnfast.torch.GradScaler("cuda")
        optimizer = nnfast.torch.AdamW(model.parameters(), lr=1e-3, max_grad_norm=1.0)
        scaler.scale(loss).backward()
        scaler.step(optimizer)   # norm pass + one update pass; skipped on inf/NaN
        scaler.update()
    """

    def step(self, optimizer, *args, **kwargs):
        """``torch.amp.GradScaler.step``: the optimizer step with the scale handed over,
        skipped (nothing written) when a gradient holds an inf or NaN.

        Returns:
            what ``optimizer.step`` returns.

        Raises:
            RuntimeError: as torch's (a closure; ``step`` twice before ``update``).
        """
        from torch.amp.grad_scaler import OptState

        if not self._enabled or not isinstance(optimizer, _KernelOptimizer):
            return super().step(optimizer, *args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale_growth_tracker("step")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is not OptState.READY:  # unscale_ found the infs already (or error)
            return super().step(optimizer, *args, **kwargs)
        found_inf = torch.zeros((), dtype=torch.float32, device=self._scale.device)
        # (times a scale the caller set on the optimizer, as torch's step multiplies it)
        optimizer.grad_scale = self._get_scale_async() * getattr(optimizer, "grad_scale", 1)
        optimizer.found_inf = found_inf
        optimizer._finds_inf = True
        try:
            result = optimizer.step(*args, **kwargs)
        finally:
            del optimizer.grad_scale, optimizer.found_inf, optimizer._finds_inf
        state["found_inf_per_device"] = {found_inf.device: found_inf}
        state["stage"] = OptState.STEPPED
        return result


class SGD(_KernelOptimizer):
    r"""``torch.optim.SGD`` on nnfast's kernels: SGD, momentum, Nesterov.

    .. math::

        b_1 = g'_1, \quad b_t = \mu b_{t-1} + (1 - \tau) g'_t, \qquad
        p_t = p_{t-1} - \eta\,(g'_t + \mu b_t) \ \text{(nesterov)}, \quad
        p_t = p_{t-1} - \eta\,b_t \ \text{(otherwise)}

    and :math:`p_t = p_{t-1} - \eta g'_t` without momentum, :math:`g'` the gradient negated
    when ``maximize``, plus :math:`\lambda p` (``weight_decay``); details in
    :class:`nnfast.optim.SGD`. State: ``momentum_buffer`` (when ``momentum != 0``), and
    ``step`` with ``stochastic_rounding``, which keys its random bits (torch keeps no step
    count).

    Args:
        params: tensors or param-group dicts, as torch takes them.
        lr (:math:`\eta`), momentum (:math:`\mu`), dampening (:math:`\tau`), weight_decay
        (:math:`\lambda`), nesterov, maximize: torch's, with its defaults.
        foreach, fused: accepted and kept; nnfast's kernel is used either way.
        differentiable: must be False.

    Raises:
        ValueError: negative ``lr``, ``momentum`` or ``weight_decay``; ``nesterov`` without
            momentum or with dampening; ``differentiable=True``.
        RuntimeError: ``fused=True`` with ``foreach=True`` or ``differentiable=True``.
        At :meth:`step`: see the module docstring.
    """

    _arithmetic = _numpy_optim.SGD
    _fallbacks = {"nesterov": False, "maximize": False, "foreach": None,
                  "differentiable": False, "fused": False}

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None, master_weights=False, store_param_remainders=False,
                 state_dtype=None, stochastic_rounding=False, max_grad_norm=None):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize, foreach=foreach,
                                      differentiable=differentiable, fused=fused,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding)),
                         max_grad_norm=max_grad_norm)

    def _counts_steps(self, hp):
        # torch's SGD keeps no step count; stochastic rounding needs one, as its key.
        return bool(hp.get("stochastic_rounding"))

    def _initial_state(self, p, name, dtype):
        if name != "momentum_buffer":
            return super()._initial_state(p, name, dtype)
        # The first momentum step writes b = g' without reading b (nnfast.optim.SGD).
        return torch.empty_like(p, dtype=dtype, memory_format=torch.preserve_format)


class Adagrad(_KernelOptimizer):
    r"""``torch.optim.Adagrad`` on nnfast's kernels.

    .. math::

        s_t = s_{t-1} + g'^2_t, \qquad
        p_t = p_{t-1} - \frac{\eta}{1 + (t - 1)\gamma}\,\frac{g'_t}{\sqrt{s_t} + \epsilon}

    from :math:`s_0` = ``initial_accumulator_value``; details in :class:`nnfast.optim.Adagrad`.
    State: ``step``, ``sum``, created for every parameter when the optimizer is built (and for
    a group added later on its first step, from the constructor's
    ``initial_accumulator_value``), as torch does.

    Args:
        params: tensors or param-group dicts, as torch takes them.
        lr (:math:`\eta`), lr_decay (:math:`\gamma`), weight_decay (:math:`\lambda`),
        initial_accumulator_value, eps (:math:`\epsilon`), maximize: torch's, with its
        defaults.
        foreach, fused: accepted and kept; nnfast's kernel is used either way.
        differentiable: must be False.

    Raises:
        ValueError: a negative hyperparameter; ``differentiable=True``.
        RuntimeError: ``fused=True`` with ``foreach=True`` or ``differentiable=True``.
        At :meth:`step`: see the module docstring.
    """

    _arithmetic = _numpy_optim.Adagrad
    _fallbacks = {"foreach": None, "maximize": False, "differentiable": False, "fused": None}

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, foreach=None, *, maximize=False,
                 differentiable=False, fused=None, master_weights=False, store_param_remainders=False, state_dtype=None,
                 stochastic_rounding=False, max_grad_norm=None):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps,
                                      weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      foreach=foreach, maximize=maximize,
                                      differentiable=differentiable, fused=fused,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding)),
                         max_grad_norm=max_grad_norm)
        # torch builds Adagrad's state up front (so state_dict() has it before any step).
        for group in self.param_groups:
            hp = self._hyperparameters(group, "")
            for p in group["params"]:
                p_hp = _for_dtype(hp, p.dtype)
                self.state[p].update(step=_step_tensor(p, group))
                self.state[p].update({name: self._initial_state(p, name, _state_dtype(p, name, p_hp))
                                      for name in self._state_names(p_hp)})

    def _initial_state(self, p, name, dtype):
        if name != "sum":
            return super()._initial_state(p, name, dtype)
        value = self.defaults["initial_accumulator_value"]
        if p.is_complex():  # torch: both parts of a complex sum start at the value
            value = complex(value, value)
        return torch.full_like(p, value, dtype=dtype, memory_format=torch.preserve_format)


class RMSprop(_KernelOptimizer):
    r"""``torch.optim.RMSprop`` on nnfast's kernels, plain, centered and with momentum.

    .. math::

        v_t = \alpha v_{t-1} + (1 - \alpha) g'^2_t, \quad
        a_t = \sqrt{v_t - c_t^2} + \epsilon \ \text{(centered, } c_t = \alpha c_{t-1} +
        (1-\alpha) g'_t\text{)}, \quad a_t = \sqrt{v_t} + \epsilon \ \text{(otherwise)} \\
        b_t = \mu b_{t-1} + g'_t / a_t, \ p_t = p_{t-1} - \eta b_t \ (\mu > 0); \qquad
        p_t = p_{t-1} - \eta g'_t / a_t \ (\mu = 0)

    details in :class:`nnfast.optim.RMSprop`. State: ``step``, ``square_avg``,
    ``momentum_buffer`` (momentum > 0), ``grad_avg`` (centered).

    Args:
        params: tensors or param-group dicts, as torch takes them.
        lr (:math:`\eta`), alpha (:math:`\alpha`), eps (:math:`\epsilon`), weight_decay
        (:math:`\lambda`), momentum (:math:`\mu`), centered, maximize: torch's, with its
        defaults.
        foreach: accepted and kept; nnfast's kernel is used either way.
        capturable, differentiable: must be False.

    Raises:
        ValueError: a negative hyperparameter, ``alpha`` outside [0, 1]; ``capturable`` or
            ``differentiable``. At :meth:`step`: see the module docstring.
    """

    _arithmetic = _numpy_optim.RMSprop
    _fallbacks = {"momentum": 0, "centered": False, "foreach": None, "maximize": False,
                  "differentiable": False, "capturable": False}

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False, *, master_weights=False, store_param_remainders=False, state_dtype=None,
                 stochastic_rounding=False, max_grad_norm=None):
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps,
                                      centered=centered, weight_decay=weight_decay,
                                      capturable=capturable, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding)),
                         max_grad_norm=max_grad_norm)


class Adam(_KernelOptimizer):
    r"""``torch.optim.Adam`` on nnfast's kernels: Adam, AMSGrad, and AdamW's decoupled decay.

    .. math::

        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g'_t, \quad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g'^2_t, \quad
        \hat v_t = \max(\hat v_{t-1}, v_t) \ \text{(amsgrad)} \\
        p_t = p_{t-1} - \frac{\eta}{1 - \beta_1^t}
              \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    with :math:`\lambda p` in :math:`g'` or, with ``decoupled_weight_decay``,
    :math:`p \leftarrow p(1 - \eta\lambda)` first; details in :class:`nnfast.optim.Adam`.
    State: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).

    Args:
        params: tensors or param-group dicts, as torch takes them.
        lr (:math:`\eta`), betas (:math:`\beta_1, \beta_2`), eps (:math:`\epsilon`),
        weight_decay (:math:`\lambda`), amsgrad, maximize, decoupled_weight_decay: torch's,
        with its defaults.
        foreach, fused: accepted and kept; nnfast's kernel is used either way.
        capturable, differentiable: must be False.

    Raises:
        ValueError: negative ``lr``, ``eps`` or ``weight_decay``; a beta outside [0, 1);
            betas not both floats or both tensors; a tensor ``lr`` or beta with
            ``foreach=True`` (and ``capturable=False``); ``capturable`` or ``differentiable``.
        RuntimeError: ``fused=True`` with ``foreach=True`` or ``differentiable=True``.
        At :meth:`step`: see the module docstring.
    """

    _arithmetic = _numpy_optim.Adam
    _fallbacks = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                  "differentiable": False, "decoupled_weight_decay": False, "fused": None}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False,
                 master_weights=False, store_param_remainders=False, state_dtype=None,
                 stochastic_rounding=False, max_grad_norm=None):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable, differentiable=differentiable,
                                      fused=fused,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding)),
                         max_grad_norm=max_grad_norm)

    @classmethod
    def _check_constructor_rules(cls, defaults):
        """torch.optim.Adam's and AdamW's, besides the ``fused`` ones: betas are both
        floats or both tensors, and a tensor ``lr`` or beta needs ``foreach`` off or
        ``capturable`` on (torch's foreach implementation does not take them)."""
        betas = defaults["betas"]
        if not (all(isinstance(b, float) for b in betas)
                or all(isinstance(b, torch.Tensor) for b in betas)):
            kinds = ", ".join(type(b).__name__ for b in betas)
            raise ValueError(f"betas must be either both floats or both Tensors (as in "
                             f"torch.optim.{cls.__name__}), got ({kinds})")
        if defaults["foreach"] and not defaults["capturable"]:
            for name, value in (("lr", defaults["lr"]), ("betas[0]", betas[0]),
                                ("betas[1]", betas[1])):
                if isinstance(value, torch.Tensor):
                    raise ValueError(f"{name} as a Tensor is not supported for "
                                     f"capturable=False and foreach=True (as in "
                                     f"torch.optim.{cls.__name__})")
        super()._check_constructor_rules(defaults)


class AdamW(Adam):
    r"""``torch.optim.AdamW`` on nnfast's kernels: :class:`Adam` with decoupled weight decay.

    .. math::

        p_{t-1} \leftarrow p_{t-1} (1 - \eta\lambda), \text{ then the Adam update}

    ``weight_decay`` defaults to 1e-2; every group keeps ``decoupled_weight_decay=True``,
    also after ``load_state_dict``, as torch's AdamW does. Arguments and errors as
    :class:`Adam`.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None, master_weights=False,
                 store_param_remainders=False, state_dtype=None, stochastic_rounding=False,
                 max_grad_norm=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True, master_weights=master_weights,
                         store_param_remainders=store_param_remainders,
                         state_dtype=state_dtype, stochastic_rounding=stochastic_rounding,
                         max_grad_norm=max_grad_norm)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


def _scalar_tensor(value, p, group):
    """A per-parameter number as torch keeps it (NAdam's ``mu_product``; as ``step``
    without ``fused``): a CPU scalar of torch's default scalar dtype, on the parameter's
    device when capturable."""
    dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    device = p.device if group.get("capturable") else None
    return torch.tensor(float(value), dtype=dtype, device=device)


class NAdam(_KernelOptimizer):
    r"""``torch.optim.NAdam`` on nnfast's kernels, with coupled or decoupled weight decay.

    .. math::

        \mu_t = \beta_1 (1 - \tfrac12 0.96^{t\psi}), \quad P_t = P_{t-1}\mu_t, \quad
        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g'_t, \quad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g'^2_t \\
        p_t = p_{t-1} - \eta \frac{1 - \mu_t}{1 - P_t} \frac{g'_t}{d_t}
              - \eta \frac{\mu_{t+1}}{1 - P_t \mu_{t+1}} \frac{m_t}{d_t}, \quad
        d_t = \sqrt{v_t / (1 - \beta_2^t)} + \epsilon

    with :math:`\lambda p` in :math:`g'` or, with ``decoupled_weight_decay``,
    :math:`p \leftarrow p(1 - \eta\lambda)` first; details in :class:`nnfast.optim.NAdam`.
    State: ``step``, ``mu_product`` (:math:`P_t`, a scalar tensor multiplied by
    :math:`\mu_t` each step as torch multiplies it, so checkpoints cross both ways and long
    runs stay step for step with torch's), ``exp_avg``, ``exp_avg_sq``.

    Args:
        params: tensors or param-group dicts, as torch takes them.
        lr (:math:`\eta`), betas (:math:`\beta_1, \beta_2`), eps (:math:`\epsilon`),
        weight_decay (:math:`\lambda`), momentum_decay (:math:`\psi`),
        decoupled_weight_decay, maximize: torch's, with its defaults.
        foreach: accepted and kept; nnfast's kernel is used either way.
        capturable, differentiable: must be False.

    Raises:
        ValueError: negative ``lr``, ``eps``, ``weight_decay`` or ``momentum_decay``; a beta
            outside [0, 1); ``capturable`` or ``differentiable``. At :meth:`step`: see the
            module docstring, and a state without a one-element floating-point
            ``mu_product`` tensor.
    """

    _arithmetic = _numpy_optim.NAdam
    _fallbacks = {"maximize": False, "foreach": None, "capturable": False,
                  "differentiable": False, "decoupled_weight_decay": False}

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False, master_weights=False,
                 store_param_remainders=False, state_dtype=None, stochastic_rounding=False,
                 max_grad_norm=None):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable, differentiable=differentiable,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding)),
                         max_grad_norm=max_grad_norm)

    def __setstate__(self, state):
        # torch's NAdam turns a plain-number mu_product of an older checkpoint into a tensor.
        super().__setstate__(state)
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p)
                if st and "mu_product" in st and not torch.is_tensor(st["mu_product"]):
                    st["mu_product"] = _scalar_tensor(st["mu_product"], p, group)

    def _plan(self, index, group):
        hp, work = super()._plan(index, group)
        position = {id(p): j for j, p in enumerate(group["params"])}
        for p, _, _ in work:
            st = self.state.get(p)
            if not st:
                continue
            product = st.get("mu_product")
            where = f"the state 'mu_product' of param_groups[{index}]['params'][{position[id(p)]}]"
            if product is None:
                raise ValueError(f"{where} is missing")
            if not (isinstance(product, torch.Tensor) and product.is_floating_point()):
                raise TypeError(f"{where} must be a floating-point tensor, got {product!r}")
            if product.numel() != 1:
                raise ValueError(f"{where} must have one element, got shape {tuple(product.shape)}")
        return hp, work

    def _pending_state(self, p, names, hp):
        # mu_product travels with the state tensors (first, torch's key order), as a scalar
        # that nnfast.optim.NAdam multiplies in place once the kernel has run.
        tensors, new = super()._pending_state(p, names, hp)
        st = self.state.get(p)
        if st:
            product = st["mu_product"]
        else:
            product = _scalar_tensor(1.0, p, {})
        return {"mu_product": product.view(()), **tensors}, new


class RAdam(_KernelOptimizer):
    r"""``torch.optim.RAdam`` on nnfast's kernels, with coupled or decoupled weight decay.

    .. math::

        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g'_t, \quad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g'^2_t, \quad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t} \\
        p_t = p_{t-1} - \frac{\eta\,r_t \sqrt{1 - \beta_2^t}}{1 - \beta_1^t}
              \frac{m_t}{\sqrt{v_t} + \epsilon} \ (\rho_t > 5), \qquad
        p_t = p_{t-1} - \frac{\eta}{1 - \beta_1^t} m_t \ \text{(otherwise)}

    with :math:`\rho_\infty = 2/(1-\beta_2) - 1`, :math:`r_t` the rectification, and
    :math:`\lambda p` in :math:`g'` or, with ``decoupled_weight_decay``,
    :math:`p \leftarrow p(1 - \eta\lambda)` first; details in :class:`nnfast.optim.RAdam`
    and :func:`nnfast.radam_step`. State: ``step``, ``exp_avg``, ``exp_avg_sq``.

    Args:
        params: tensors or param-group dicts, as torch takes them.
        lr (:math:`\eta`), betas (:math:`\beta_1, \beta_2`), eps (:math:`\epsilon`),
        weight_decay (:math:`\lambda`), decoupled_weight_decay, maximize: torch's, with
        its defaults.
        foreach: accepted and kept; nnfast's kernel is used either way.
        capturable, differentiable: must be False.

    Raises:
        ValueError: negative ``lr``, ``eps`` or ``weight_decay``; a beta outside [0, 1);
            ``capturable`` or ``differentiable``. At :meth:`step`: see the module
            docstring.
    """

    _arithmetic = _numpy_optim.RAdam
    _fallbacks = {"maximize": False, "foreach": None, "capturable": False,
                  "differentiable": False, "decoupled_weight_decay": False}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False,
                 capturable=False, differentiable=False, master_weights=False,
                 store_param_remainders=False, state_dtype=None, stochastic_rounding=False,
                 max_grad_norm=None):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable, differentiable=differentiable,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding)),
                         max_grad_norm=max_grad_norm)


class LAMB(_KernelOptimizer):
    r"""LAMB (You et al., 2020) on nnfast's kernels, with apex's ``FusedLAMB`` semantics.

    .. math::

        g' = c\,g\ (+\lambda p \text{ without adam\_w\_mode}), \quad
        m_t = \beta_1 m_{t-1} + \beta_3 g', \quad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g'^2 \\
        u_t = \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}
              \ (+\lambda p \text{ with adam\_w\_mode}), \quad
        p_t = p_{t-1} - \eta \frac{\lVert p_{t-1} \rVert}{\lVert u_t \rVert} u_t

    with :math:`c = \mu / \max(G, \mu)` for the norm :math:`G` of every gradient of the
    step (all groups; ``last_grad_norm`` keeps it), the trust ratio taken per parameter;
    details in :func:`nnfast.lamb_step` and :class:`nnfast.optim.LAMB`. State: ``step``,
    ``exp_avg``, ``exp_avg_sq`` (apex keeps one ``step`` per group instead). With
    :class:`GradScaler` (or ``torch.amp.GradScaler``) the unscaling is folded into the
    update and :math:`G` is the norm of the unscaled gradients.

    Args:
        params: tensors or param-group dicts, as torch takes them.
        lr (:math:`\eta`), bias_correction, betas (:math:`\beta_1, \beta_2`), eps
        (:math:`\epsilon`), weight_decay (:math:`\lambda`), adam_w_mode, grad_averaging
        (:math:`\beta_3 = 1 - \beta_1`, else 1), use_nvlamb: apex's, with its defaults.
        max_grad_norm: :math:`\mu \ge 0` for the whole optimizer (0: no clipping).
        maximize: ascend (beyond apex).
        master_weights, store_param_remainders, state_dtype, stochastic_rounding: nnfast's
        storage options (module docstring).

    Raises:
        ValueError: negative ``lr``, ``eps``, ``weight_decay`` or ``max_grad_norm``; a beta
            outside [0, 1). At :meth:`step`: see the module docstring.
    """

    _arithmetic = _numpy_optim.LAMB
    _fallbacks = {"bias_correction": True, "adam_w_mode": True, "grad_averaging": True,
                  "use_nvlamb": False, "maximize": False}
    _flags = ("bias_correction", "adam_w_mode", "grad_averaging", "use_nvlamb", "maximize")

    def __init__(self, params, lr=1e-3, bias_correction=True, betas=(0.9, 0.999), eps=1e-6,
                 weight_decay=0.01, adam_w_mode=True, grad_averaging=True, max_grad_norm=1.0,
                 use_nvlamb=False, *, maximize=False, master_weights=False,
                 store_param_remainders=False, state_dtype=None, stochastic_rounding=False):
        _core.check_nonnegative(max_grad_norm, "max_grad_norm")
        super().__init__(params, dict(lr=lr, bias_correction=bias_correction, betas=tuple(betas),
                                      eps=eps, weight_decay=weight_decay,
                                      adam_w_mode=adam_w_mode, grad_averaging=grad_averaging,
                                      use_nvlamb=use_nvlamb, maximize=maximize,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding)),
                         max_grad_norm=max_grad_norm if max_grad_norm > 0 else None)

    def _hyperparameters(self, group, where):
        """The base class's, with LAMB's flags as bools and the kernels' own clipping off:
        the clip factor of the norm over every group is in ``grad_scale``
        (:meth:`_clip_coefficient`)."""
        group = {**group, "max_grad_norm": 0.0}
        for flag in self._flags:
            if flag in group:
                group[flag] = bool(group[flag])
        return super()._hyperparameters(group, where)

    def _clip_coefficient(self, total, dtype):
        """apex's clip factor ``max_grad_norm / max(total, max_grad_norm)`` (that of
        :func:`nnfast.lamb_step`)."""
        return _core.lamb_clip_factor(total, self.max_grad_norm)


# ---------------------------------------------------------------- gradient clipping

def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    r"""``torch.nn.utils.clip_grad_norm_`` on nnfast's kernels (:func:`nnfast.clip_grad_norm_`).

    .. math::

        g \leftarrow g \cdot \min\Big(1, \frac{\mathrm{max\_norm}}{\|g\|_p + 10^{-6}}\Big)

    for the gradients of ``parameters`` (those without ``.grad`` skipped), the norm taken over
    all of them as one vector, in place in the tensors' memory (CPU tensors as NumPy views, CUDA
    tensors as themselves, on torch's current stream). The norm is summed in float64 in a fixed
    order (the same bits for any thread count), so on float32 grads it may differ from torch's
    float32 sum in the last bits; the coefficient and the products are computed from it as
    torch computes them (float32 for float32 grads), so the clipped gradients are those of
    ``torch.nn.utils.clip_grads_with_norm_`` for the returned norm, bit for bit. bfloat16 and
    float16 grads take the coefficient in float32 (torch rounds it to their dtype).

    Gradients of one dtype and one device, each dense (contiguous, or a permutation such as
    channels_last) and real, run the nnfast kernels (on a GPU: float32 or float64); any other
    list (mixed dtypes or devices, sparse, complex, strided-slice or 16-bit CUDA gradients)
    runs torch's own implementation. ``foreach``
    chooses among torch's implementations and changes nothing on the nnfast path.

    Args:
        parameters: a tensor, or an iterable of tensors (an empty generator warns, as torch).
        max_norm: the largest norm kept, >= 0 (``float(max_norm)``, as torch).
        norm_type: p > 0 or ``inf`` (``float(norm_type)``, so ``"inf"`` works, as torch).
        error_if_nonfinite: raise RuntimeError, with no gradient written, when the norm is NaN
            or infinite.
        foreach: accepted for torch's signature.

    Returns:
        The total norm of the gradients before clipping: a 0-dim tensor of the gradients'
        dtype on their device (``torch.tensor(0.0)`` when there is none).

    Raises:
        RuntimeError: ``error_if_nonfinite`` and the norm is NaN or infinite (torch's message).
        ValueError: a negative or NaN ``max_norm``, or ``norm_type`` <= 0 or NaN (torch accepts
            these; nnfast refuses them, with nothing written).
        TypeError: ``max_norm`` or ``norm_type`` that ``float()`` refuses.
    """
    from .gradients import clip_grad_norm_ as clip_on_kernels

    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)
        if is_generator and not parameters:
            warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.",
                          stacklevel=2)
    max_norm, norm_type = float(max_norm), float(norm_type)
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        clip_on_kernels([], max_norm, norm_type=norm_type)  # (validates the scalars)
        return torch.tensor(0.0)
    first = grads[0]
    on_kernels = first.dtype in _DTYPES and not first.is_complex() and not (
        first.is_cuda and first.dtype in _HALF)  # (on the GPU the norms take float32, float64)
    if not on_kernels or not all(g.dtype == first.dtype and g.device == first.device
                                 and g.layout == torch.strided and _dense(g) for g in grads):
        clip_on_kernels([], max_norm, norm_type=norm_type)
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type,
                                              error_if_nonfinite, foreach)
    total = clip_on_kernels([_memory(g) for g in grads], max_norm, norm_type=norm_type,
                            error_if_nonfinite=error_if_nonfinite)
    _increment_versions(grads)
    if first.is_cuda:
        return total.reshape(())
    return torch.tensor(total, dtype=first.dtype)


class Lion(_KernelOptimizer):
    r"""lion-pytorch's ``Lion`` on nnfast's kernels, step for step equal to it.

    .. math::

        p_{t-1} \leftarrow p_{t-1} (1 - \eta\lambda), \quad
        p_t = p_{t-1} - \eta \operatorname{sign}(\beta_1 m_{t-1} + (1 - \beta_1) g'_t),
        \quad m_t = \beta_2 m_{t-1} + (1 - \beta_2) g'_t

    details in :class:`nnfast.optim.Lion`. State: ``exp_avg`` (lion-pytorch's only key) and
    ``step``, which lion-pytorch does not keep: nnfast keeps it because stochastic rounding
    keys its random bits with it. Checkpoints cross both ways: lion-pytorch ignores the
    extra ``step``, and a lion-pytorch checkpoint loads here with ``step`` 0 (the update does
    not depend on it).

    Args:
        params: tensors or param-group dicts, as torch takes them.
        lr (:math:`\eta`), betas (:math:`\beta_1, \beta_2`), weight_decay
        (:math:`\lambda`, decoupled): lion-pytorch's, with its defaults; its
        ``decoupled_weight_decay=True`` (:math:`\lambda` divided by the initial lr) is
        ``weight_decay=wd / lr`` here, and ``use_triton`` has no counterpart.
        maximize: ascend (beyond lion-pytorch, which ignores the group key).

    Raises:
        ValueError: negative ``lr`` or ``weight_decay``; a beta outside [0, 1].
        At :meth:`step`: see the module docstring.
    """

    _arithmetic = _numpy_optim.Lion
    _fallbacks = {"maximize": False}

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *,
                 maximize=False, master_weights=False, store_param_remainders=False,
                 state_dtype=None, stochastic_rounding=False,
                 max_grad_norm=None):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay,
                                      maximize=maximize,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding)),
                         max_grad_norm=max_grad_norm)

    def __setstate__(self, state):
        # A lion-pytorch checkpoint has no step count: count from 0.
        super().__setstate__(state)
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p)
                if st and "step" not in st:
                    st["step"] = _step_tensor(p, group)


class Adamax(_KernelOptimizer):
    r"""``torch.optim.Adamax`` on nnfast's kernels.

    .. math::

        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g'_t, \quad
        u_t = \max(\beta_2 u_{t-1}, |g'_t| + \epsilon), \quad
        p_t = p_{t-1} - \frac{\eta}{1 - \beta_1^t} \frac{m_t}{u_t}

    with :math:`\lambda p` (``weight_decay``) in :math:`g'`; details in
    :class:`nnfast.optim.Adamax`. State: ``step``, ``exp_avg``, ``exp_inf``.

    Args:
        params: tensors or param-group dicts, as torch takes them.
        lr (:math:`\eta`), betas (:math:`\beta_1, \beta_2`), eps (:math:`\epsilon`),
        weight_decay (:math:`\lambda`), maximize: torch's, with its defaults.
        foreach: accepted and kept; nnfast's kernel is used either way.
        capturable, differentiable: must be False.

    Raises:
        ValueError: negative ``lr``, ``eps`` or ``weight_decay``; a beta outside [0, 1);
            ``capturable`` or ``differentiable``. At :meth:`step`: see the module docstring.
    """

    _arithmetic = _numpy_optim.Adamax
    _fallbacks = {"foreach": None, "maximize": False, "differentiable": False,
                  "capturable": False}

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False,
                 master_weights=False, store_param_remainders=False, state_dtype=None,
                 stochastic_rounding=False,
                 max_grad_norm=None):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable,
                                      capturable=capturable,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding)),
                         max_grad_norm=max_grad_norm)


class Adadelta(_KernelOptimizer):
    r"""``torch.optim.Adadelta`` on nnfast's kernels, in torch's operation order.

    .. math::

        v_t = \rho v_{t-1} + (1 - \rho) g'^2_t, \quad
        \Delta_t = \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} g'_t, \quad
        u_t = \rho u_{t-1} + (1 - \rho) \Delta_t^2, \quad
        p_t = p_{t-1} - \eta \Delta_t

    with :math:`\lambda p` (``weight_decay``) in :math:`g'`; details in
    :class:`nnfast.optim.Adadelta`. State: ``step``, ``square_avg``, ``acc_delta``.

    Args:
        params: tensors or param-group dicts, as torch takes them.
        lr (:math:`\eta`), rho (:math:`\rho`), eps (:math:`\epsilon`), weight_decay
        (:math:`\lambda`), maximize: torch's, with its defaults.
        foreach: accepted and kept; nnfast's kernel is used either way.
        capturable, differentiable: must be False.

    Raises:
        ValueError: negative ``lr``, ``eps`` or ``weight_decay``; ``rho`` outside [0, 1];
            ``capturable`` or ``differentiable``. At :meth:`step`: see the module docstring.
    """

    _arithmetic = _numpy_optim.Adadelta
    _fallbacks = {"foreach": None, "maximize": False, "differentiable": False,
                  "capturable": False}

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False, master_weights=False,
                 store_param_remainders=False, state_dtype=None, stochastic_rounding=False,
                 max_grad_norm=None):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize, capturable=capturable,
                                      foreach=foreach, differentiable=differentiable,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding)),
                         max_grad_norm=max_grad_norm)


class Adafactor(_KernelOptimizer):
    r"""``torch.optim.Adafactor`` on nnfast's kernels.

    .. math::

        \alpha_t = \max(\epsilon_2, \operatorname{RMS}(p))\,\min(\eta, 1/\sqrt{t}), \quad
        p \leftarrow p\,(1 - \eta\lambda) - \frac{\alpha_t}{\max(1, \operatorname{RMS}(u)/d)}\,u,
        \quad u = \frac{g'}{\sqrt{\max(\hat v, \epsilon_1^2)}}

    with :math:`\hat v` the factored second moment (row and column means of
    :math:`g'^2`, lerped with weight :math:`t^{\hat\beta}`) of a parameter of 2 or more
    dims, or the plain one of a 0-D or 1-D parameter; details in
    :func:`nnfast.adafactor_step`. State: ``step``, and ``row_var`` and ``col_var`` (torch's
    shapes: the parameter's with the last, or the second-to-last, dim 1) or ``variance``,
    as torch keeps them, so checkpoints cross both ways. Every step runs a parameter in C
    order (a non-contiguous one through a contiguous copy).

    Args:
        params: tensors or param-group dicts, as torch takes them (CPU or CUDA, any
            dtype and storage option of the module docstring).
        lr (:math:`\eta`), beta2_decay (:math:`\hat\beta`), eps
        (:math:`(\epsilon_1, \epsilon_2)`, :math:`\epsilon_1` None for the dtype's machine
        epsilon), d, weight_decay (:math:`\lambda`, decoupled), maximize: torch's, with its
        defaults.
        foreach: accepted and kept; nnfast's kernel is used either way.
        master_weights, store_param_remainders, state_dtype, stochastic_rounding: the
            storage options (module docstring).
        max_grad_norm: clip the gradients to this global norm inside the step (module
            docstring), or None.

    Raises:
        ValueError: negative ``lr``, ``eps`` entry or ``weight_decay``, ``beta2_decay > 0``,
            ``d < 1``.
        At :meth:`step`: see the module docstring; RuntimeError for a complex
            parameter (as torch).
    """

    _arithmetic = _numpy_optim.Adafactor
    _fallbacks = {"foreach": None, "maximize": False}
    _elementwise = False

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
                 weight_decay=0.0, *, foreach=None, maximize=False, master_weights=False,
                 store_param_remainders=False, state_dtype=None, stochastic_rounding=False,
                 max_grad_norm=None):
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d,
                                      weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize,
                                      **_precision(master_weights, store_param_remainders,
                                                   state_dtype, stochastic_rounding)),
                         max_grad_norm=max_grad_norm)

    def _plan(self, index, group):
        # torch refuses complex parameters at the step, not in the constructor.
        for j, p in enumerate(group["params"]):
            if p.grad is not None and p.is_complex():
                raise RuntimeError(f"param_groups[{index}]['params'][{j}]: Adafactor does not "
                                   f"support complex parameters (as torch.optim.Adafactor)")
        return super()._plan(index, group)

    def _state_names_of(self, hp, p):
        return self._arithmetic._moment_names(p) + _numpy_optim.precision_state_names(hp)

    def _state_shape(self, p, name):
        return self._arithmetic._state_shape(name, p)

    def _initial_state(self, p, name, dtype):
        if name in ("row_var", "col_var"):  # not shaped like p
            return torch.zeros(self._state_shape(p, name), dtype=dtype, device=p.device)
        return super()._initial_state(p, name, dtype)

