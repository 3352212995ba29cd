r"""Stateful optimizers over lists of NumPy arrays, step for step equal to ``torch.optim``.

Each optimizer owns a list of float32/float64 parameter arrays (NumPy arrays, C-contiguous and
writeable: they are updated in place) and the per-parameter state (momentum buffers, moment
estimates, ...), allocated lazily on a parameter's first step, as zeros like the parameter
unless the class says otherwise, as torch does. ``opt.step(grads)`` takes one gradient per
parameter; a ``None`` gradient skips its parameter, whose step count then does not advance
(torch skips parameters without ``.grad``). ``opt.state[i]`` holds parameter ``i``'s state:
``"step"`` (its own count of updates, :math:`t`) and the arrays each class names.

Parameters: NumPy arrays of one dtype, float32, float64, bfloat16 (``nnfast.bfloat16``) or
float16. Storage options (keyword only, kept in the hyperparameters, so a ``state_dict``
resumes exactly), as the functional steps take them (:mod:`nnfast.functional`):

* ``state_dtype``: None (the parameters' dtype, as ``torch.optim``'s fused optimizers keep
  it), float32 or bfloat16, for every state array.
* ``master_weights``: 16-bit parameters get a float32 master in their state
  (``"master_param"``, the parameter's value at its first step); each step updates it and
  writes the parameter rounded to nearest.
* ``store_param_remainders``: bfloat16 parameters get int16 remainders instead
  (``"param_remainder"``): the parameter and its remainder are the float32 master bit for bit,
  at 2 bytes per parameter instead of 4.
* ``stochastic_rounding``, ``seed``: 16-bit parameters without a master are rounded
  stochastically (expected value: the float32 result); ``seed`` (drawn at random when None)
  keys the random bits with each parameter's step count.

``lr`` is a float or a callable ``lr(steps_taken)`` called before each step with the number of
steps the optimizer has already taken (0 on the first), so
``nnfast.schedules.ExponentialDecay`` plugs in.

Each class runs one functional step of :mod:`nnfast.functional`, whose docstring states the
update as math, with its symbols mapped to the arguments, and defines the effective gradient
:math:`g'` (``weight_decay``, ``l1``, ``maximize``). The class docstrings say which step, with
which arguments, and what differs from calling it directly (first steps, learning-rate decay,
initial state).

All the arithmetic is done by the functional steps in ``_ops`` (by default the compiled
kernels in ``nnfast.functional``). A subclass with ``_ops = nnfast.reference`` runs the same
optimizer on the NumPy reference.
"""

from __future__ import annotations

import copy
import numbers
from types import ModuleType
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from ml_dtypes import bfloat16

from nnfast import _core
from nnfast import functional as _kernels
from nnfast._types import HostArray, LearningRate

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "RAdam", "LAMB", "Lion",
           "Adamax", "Adadelta", "Adafactor"]

#: The hyperparameters of an optimizer, by name (the constructor's arguments but params).
Hyperparameters = dict[str, Any]

#: One parameter's state: {"step": int, state name: array, ...}.
ParameterState = dict[str, Any]


# --------------------------------------------------------------------------- validation


def _check_lr(lr: LearningRate) -> None:
    if not callable(lr):
        _core.check_nonnegative(lr, "lr")


_PARAM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(bfloat16),
                 np.dtype(np.float16))
_HALF = (np.dtype(bfloat16), np.dtype(np.float16))


def _check_params(params: HostArray | Iterable[HostArray]) -> list[HostArray]:
    if isinstance(params, np.ndarray):
        params = [params]
    params = list(params)
    if not params:
        raise ValueError("params is empty: an optimizer needs at least one parameter array")
    for i, p in enumerate(params):
        if not isinstance(p, np.ndarray) or p.dtype not in _PARAM_DTYPES:
            kind = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
            raise TypeError(f"params[{i}] must be a float32, float64, bfloat16 or float16 numpy "
                            f"array, got {kind}")
        if p.dtype != params[0].dtype:
            raise TypeError(f"params[{i}] has dtype {p.dtype}, params[0] {params[0].dtype}: the "
                            f"parameters of one optimizer share one dtype")
        if not (p.flags.c_contiguous and p.flags.writeable):
            raise ValueError(f"params[{i}] must be C-contiguous and writeable (updated in place)")
    return params


#: The storage options every optimizer takes, with their defaults.
PRECISION_DEFAULTS = dict(master_weights=False, store_param_remainders=False, state_dtype=None,
                          stochastic_rounding=False, seed=None)


def _precision(master_weights: bool, store_param_remainders: bool, state_dtype: Any,
               stochastic_rounding: bool, seed: int | None) -> Hyperparameters:
    """The storage options as hyperparameters: flags as bools, ``state_dtype`` as a NumPy
    dtype (or None), ``seed`` drawn when stochastic rounding has none."""
    if stochastic_rounding and seed is None:
        seed = int(np.random.default_rng().integers(0, 2**63))
    return dict(master_weights=bool(master_weights),
                store_param_remainders=bool(store_param_remainders),
                state_dtype=None if state_dtype is None else np.dtype(state_dtype),
                stochastic_rounding=bool(stochastic_rounding), seed=seed)


def check_precision(hp: Hyperparameters, params_dtype: Any) -> None:
    """Raise unless the storage options of ``hp`` suit parameters of ``params_dtype``.

    Raises:
        ValueError: ``master_weights`` with ``store_param_remainders``; either, or
            ``stochastic_rounding``, for parameters that are not 16-bit (remainders: not
            bfloat16); stochastic rounding with a master; a seed outside [0, 2**64).
        TypeError: a ``state_dtype`` other than None, float32 or bfloat16 (float64
            parameters: None or float64).
    """
    dtype = np.dtype(params_dtype)
    if hp["master_weights"] and hp["store_param_remainders"]:
        raise ValueError("master_weights and store_param_remainders: choose one (both "
                         "keep the float32 master)")
    if hp["master_weights"] and dtype not in _HALF:
        raise ValueError(f"master_weights: for bfloat16 or float16 parameters, got {dtype}")
    if hp["store_param_remainders"] and dtype != np.dtype(bfloat16):
        raise ValueError(f"store_param_remainders: for bfloat16 parameters, got {dtype}")
    if hp["stochastic_rounding"]:
        if dtype not in _HALF:
            raise ValueError(f"stochastic_rounding: for bfloat16 or float16 parameters, "
                             f"got {dtype}")
        if hp["master_weights"] or hp["store_param_remainders"]:
            raise ValueError("stochastic_rounding: not with a master (it keeps the "
                             "exact value already)")
        seed = hp["seed"]
        if not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**64:  # type: ignore[operator]
            raise ValueError(f"seed: an integer in [0, 2**64), got {seed!r}")
    states = hp["state_dtype"]
    allowed = (dtype,) if dtype == np.float64 else (np.dtype(np.float32), np.dtype(bfloat16), dtype)
    if states is not None and np.dtype(states) not in allowed:
        raise TypeError(f"state_dtype: None (the parameters' dtype), float32 or "
                        f"bfloat16 (float64 parameters: float64), got {states}")


def state_dtype(hp: Hyperparameters, name: str, params_dtype: Any) -> np.dtype:
    """The dtype of the state array ``name`` of parameters of ``params_dtype``: float32 for
    a master, int16 for remainders, else ``hp["state_dtype"]`` or the parameters' own."""
    if name == "master_param":
        return np.dtype(np.float32)
    if name == "param_remainder":
        return np.dtype(np.int16)
    return np.dtype(hp["state_dtype"] or params_dtype)


def precision_state_names(hp: Hyperparameters) -> list[str]:
    """The state a storage option keeps per parameter: its float32 master, or remainders."""
    if hp["master_weights"]:
        return ["master_param"]
    return ["param_remainder"] if hp["store_param_remainders"] else []


def storage_arguments(hp: Hyperparameters, states: Sequence[ParameterState]) -> dict[str, Any]:
    """The storage options of one kernel call over parameters with ``states`` (empty when
    every option has its default, so the NumPy reference takes the same call)."""
    out: dict[str, Any] = {}
    if hp["master_weights"]:
        out["master_params"] = _gather(states, "master_param")
    if hp["store_param_remainders"]:
        out["param_remainders"] = _gather(states, "param_remainder")
    if hp["stochastic_rounding"]:
        out.update(stochastic_rounding=True, seed=hp["seed"], step=_steps(states))
    return out


def _times(product: Any, factor: float) -> Any:
    """product * factor in product's dtype (a 0-d NumPy array or torch tensor), the factor
    rounded to it first (NumPy 1's value-based casting would compute a float32 array times a
    Python float in float64)."""
    return product * (product.dtype.type(factor) if isinstance(product, np.ndarray) else factor)


def _skips(found_inf: Any) -> bool:
    """Whether a step's ``found_inf`` (None, or a 1-element array or tensor) skips it."""
    return found_inf is not None and float(found_inf.reshape(-1)[0]) != 0


def _grad_scaling(grad_scale: float, found_inf: HostArray | None) -> dict[str, Any]:
    """The gradient-scaling options of a kernel call, only those set (the NumPy reference
    takes grad_scale but not found_inf)."""
    options: dict[str, Any] = {} if found_inf is None else {"found_inf": found_inf}
    if grad_scale != 1.0:
        options["grad_scale"] = grad_scale
    return options


def initial_precision_state(p: Any, name: str) -> Any:
    """A new parameter's master (its value in float32) or remainders (zeros: a bfloat16
    value is its own float32 master)."""
    if name == "master_param":
        return p.astype(np.float32)
    return np.zeros(p.shape, np.int16)


def _gather(states: Sequence[ParameterState], name: str) -> list[Any]:
    return [st[name] for st in states]


def _steps(states: Sequence[ParameterState]) -> list[int]:
    """Each parameter's own step count (the kernels take one per tensor)."""
    return [st["step"] for st in states]


# --------------------------------------------------------------------------- base class


class _Optimizer:
    """Shared machinery: argument checks, lazy state, ``step``, ``state_dict``.

    Subclasses define ``_check_hyperparameters(hp)`` (beyond lr, weight_decay and l1, which
    every optimizer has), ``_state_names(hp)`` (the state arrays
    a parameter holds, besides "step"; ``_state_names_of(hp, p)`` where they depend on the
    parameter, ``_state_shape(name, p)`` where their shape is not the parameter's),
    optionally ``_initial_state(p, name, dtype)`` (default zeros),
    ``_scalar_states`` (per-parameter numbers besides "step", each a 0-d array, with their
    initial values: NAdam's ``mu_product``), and
    ``_apply(ops, hp, params, grads, states, lr)``: the one kernel call of an update, given
    the parameters that have a gradient and their state dicts (step count already advanced).
    ``_apply`` and ``_validate`` use nothing of the instance, so ``nnfast.torch`` runs the
    same arithmetic over tensor memory.
    """

    _ops: ModuleType = _kernels
    _scalar_states: dict[str, float] = {}
    _check_hyperparameters: Callable[[Hyperparameters], None]
    _state_names: Callable[[Hyperparameters], list[str]]
    _apply: Callable[[ModuleType, Hyperparameters, list[HostArray], list[HostArray],
                      list[ParameterState], float, dict[str, Any]], None]

    def __init__(self, params: HostArray | Iterable[HostArray],
                 hyperparameters: Hyperparameters) -> None:
        self.params = _check_params(params)
        self._validate(hyperparameters)
        check_precision(hyperparameters, self.params[0].dtype)
        self.hyperparameters = hyperparameters
        self.state: dict[int, ParameterState] = {}
        self.steps_taken = 0

    @classmethod
    def _validate(cls, hp: Hyperparameters) -> None:
        """The hyperparameters every optimizer has, then the subclass's own."""
        _check_lr(hp["lr"])
        _core.check_nonnegative(hp["weight_decay"], "weight_decay")
        _core.check_nonnegative(hp["l1"], "l1")
        cls._check_hyperparameters(hp)

    def _state_names_of(self, hp: Hyperparameters, p: HostArray) -> list[str]:
        """The state arrays of parameter ``p`` under ``hp``: ``_state_names(hp)``, for
        every parameter alike unless a class says otherwise."""
        return self._state_names(hp)

    @staticmethod
    def _state_shape(name: str, p: HostArray) -> tuple[int, ...]:
        """The shape of the state array ``name`` of parameter ``p``: ``p``'s own, unless a
        class says otherwise."""
        return tuple(p.shape)

    def _initial_state(self, p: HostArray, name: str, dtype: Any) -> HostArray:
        return np.zeros(self._state_shape(name, p), dtype)

    def _state_dtypes(self, p: HostArray) -> dict[str, Any]:
        """The dtype of each state array of parameter ``p``."""
        hp = self.hyperparameters
        return {n: state_dtype(hp, n, p.dtype)
                for n in self._state_names_of(hp, p) + precision_state_names(hp)}

    def _new_state(self, p: HostArray) -> ParameterState:
        hp = self.hyperparameters
        formula = {n: self._initial_state(p, n, d) for n, d in self._state_dtypes(p).items()
                   if n in self._state_names_of(hp, p)}
        storage = {n: initial_precision_state(p, n) for n in precision_state_names(hp)}
        scalars = {n: np.array(v, np.float32) for n, v in self._scalar_states.items()}
        return {"step": 0, **scalars, **formula, **storage}

    # -- public API

    def step(self, grads: HostArray | Iterable[HostArray | None], *, grad_scale: float = 1.0,
             found_inf: HostArray | None = None) -> None:
        """Apply one update to every parameter whose gradient is not None.

        Each parameter updated advances its own ``state[i]["step"]``; ``steps_taken``
        advances once per call (a step skipped by ``found_inf`` advances neither).

        Args:
            grads: one gradient per parameter (a NumPy array of the parameter's shape and
                dtype), or None to skip that parameter; a single array for a single
                parameter.
            grad_scale: every gradient is multiplied by it inside the kernel (an inverse
                loss scale times a clip coefficient); the gradients are not written.
            found_inf: None, or a 1-element float32 array: when it holds a nonzero value
                (an inf or NaN gradient was found) the step writes nothing.

        Returns:
            None; the parameters and their state hold the result.

        Raises:
            ValueError: ``len(grads) != len(params)``, a gradient of the wrong shape, a
                negative learning rate from the ``lr`` callable, a negative or non-finite
                ``grad_scale``, a ``found_inf`` of more than one element.
            TypeError: a gradient that is not a numpy array of the parameter's dtype; a
                ``found_inf`` that is not a float32 array.
        """
        if isinstance(grads, np.ndarray):
            grads = [grads]
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"grads has {len(grads)} entries, params has {len(self.params)}")
        lr = self.hyperparameters["lr"]
        if callable(lr):
            lr = lr(self.steps_taken)
            _core.check_nonnegative(lr, "lr (the value the lr callable returned)")
        indices = [i for i, g in enumerate(grads) if g is not None]
        # The update is one kernel call, which checks it whole (gradients included) before
        # writing anything; new state and step counts are kept only once it has run.
        pending = {}
        for i in indices:
            st = self.state.get(i) or self._new_state(self.params[i])
            pending[i] = {**st, "step": st["step"] + 1}
        if indices:
            states = [pending[i] for i in indices]
            self._apply(self._ops, self.hyperparameters, [self.params[i] for i in indices],
                        [g for g in grads if g is not None], states, lr,
                        {**storage_arguments(self.hyperparameters, states),
                         **_grad_scaling(grad_scale, found_inf)})
        if _skips(found_inf):
            return  # (the kernel checked the call whole, then wrote nothing)
        self.state.update(pending)
        self.steps_taken += 1

    def state_dict(self) -> dict[str, Any]:
        """A plain snapshot: copies of every state array, the hyperparameters and the counts.

        It pickles whenever ``lr`` does (a float or ``ExponentialDecay`` does; a lambda not).

        Returns:
            ``{"state": {index: {"step": int, name: array, ...}}, "hyperparameters": {...},
            "steps_taken": int}``, sharing no array with the optimizer.
        """
        return {
            "state": {i: {k: v.copy() if isinstance(v, np.ndarray) else v
                          for k, v in st.items()}
                      for i, st in self.state.items()},
            "hyperparameters": copy.deepcopy(self.hyperparameters),
            "steps_taken": self.steps_taken,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` snapshot exactly (arrays are copied in).

        The whole snapshot is checked before anything changes.

        Args:
            state_dict: what :meth:`state_dict` returned, from an optimizer of this class
                with the same parameter shapes and dtypes.

        Returns:
            None.

        Raises:
            ValueError: missing or unexpected keys, invalid hyperparameters, a parameter
                index out of range, a state array whose shape or dtype differs from its
                parameter's, or a scalar state (``_scalar_states``) that is not a 0-d float
                array.
        """
        if not isinstance(state_dict, dict) or set(state_dict) != {
                "state", "hyperparameters", "steps_taken"}:
            raise ValueError("state_dict must be a dict with keys 'state', 'hyperparameters' "
                             "and 'steps_taken'")
        hp = state_dict["hyperparameters"]
        if not isinstance(hp, dict) or set(hp) != set(self.hyperparameters):
            raise ValueError(f"state_dict['hyperparameters'] must have the keys "
                             f"{sorted(self.hyperparameters)}")
        try:
            self._validate(hp)
        except TypeError as error:
            raise ValueError(f"state_dict['hyperparameters']: {error}") from None
        if not isinstance(state_dict["state"], dict):
            raise ValueError("state_dict['state'] must be a dict {index: {name: value}}")
        steps_taken = state_dict["steps_taken"]
        if not isinstance(steps_taken, numbers.Integral) or steps_taken < 0:
            raise ValueError(f"state_dict['steps_taken'] must be an integer >= 0, "
                             f"got {steps_taken!r}")
        try:
            check_precision(hp, self.params[0].dtype)
        except TypeError as error:
            raise ValueError(f"state_dict['hyperparameters']: {error}") from None
        state: dict[int, ParameterState] = {}
        for i, entry in state_dict["state"].items():
            # (typeshed's numbers.Integral has no reflected comparison with an int)
            if not isinstance(i, numbers.Integral) or not 0 <= i < len(self.params):  # type: ignore[operator]
                raise ValueError(f"state_dict['state'] has index {i!r}; params has "
                                 f"{len(self.params)} entries")
            p = self.params[i]
            names = set(self._state_names_of(hp, p)) | set(precision_state_names(hp))
            keys = names | {"step"} | set(self._scalar_states)
            if not isinstance(entry, dict) or set(entry) != keys:
                raise ValueError(f"state_dict['state'][{i}] must have the keys {sorted(keys)}")
            for name in self._scalar_states:
                a = entry[name]
                if not (isinstance(a, np.ndarray) and a.shape == () and a.dtype.kind == "f"):
                    raise ValueError(f"state_dict['state'][{i}][{name!r}] must be a 0-d float "
                                     f"array, got {a!r}")
            step = entry["step"]
            if not isinstance(step, numbers.Integral) or step < 0:
                raise ValueError(f"state_dict['state'][{i}]['step'] must be an integer >= 0, "
                                 f"got {step!r}")
            saved_hp, self.hyperparameters = self.hyperparameters, hp
            try:
                dtypes = self._state_dtypes(p)
            finally:
                self.hyperparameters = saved_hp
            for name in names:
                a = entry[name]
                shape = self._state_shape(name, p)
                if not isinstance(a, np.ndarray) or a.shape != shape or a.dtype != dtypes[name]:
                    got = (a.shape, a.dtype) if isinstance(a, np.ndarray) else type(a).__name__
                    raise ValueError(f"state_dict['state'][{i}][{name!r}] must be an array of "
                                     f"shape {shape} and dtype {dtypes[name]}, got {got}")
            state[int(i)] = {"step": int(step),
                             **{name: np.array(entry[name]) for name in self._scalar_states},
                             **{name: np.array(entry[name], order="C") for name in names}}
        self.hyperparameters = copy.deepcopy(hp)
        self.state = state
        self.steps_taken = int(steps_taken)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({len(self.params)} params, {args})"


# --------------------------------------------------------------------------- optimizers


class SGD(_Optimizer):
    r"""Stochastic gradient descent, optionally with momentum (``torch.optim.SGD``).

    Each step is :func:`nnfast.sgd_step` (``momentum == 0``) or :func:`nnfast.sgdm_step`
    (whose docstring has the update), with this optimizer's arguments, except that a
    parameter's first momentum step sets the buffer to :math:`b = g'` before the update, as
    torch does. The lesson's SGDM (:math:`m_t = \beta m_{t-1} + (1-\beta) g_t` from
    :math:`m_0 = 0`) differs on that first step; use ``nnfast.sgdm_step(...,
    momentum=beta, dampening=beta)`` for it. Keras keeps the learning rate inside the buffer
    (:math:`v = \mu v - \eta g`), which differs from this when the learning rate changes.

    Args:
        params: the parameters, a NumPy array or an iterable of them.
        lr: learning rate :math:`\eta \ge 0`, or a callable of the steps taken.
        momentum: :math:`\mu \ge 0`; 0 is plain SGD.
        dampening: :math:`\tau`.
        weight_decay: coupled L2 :math:`\lambda_2 \ge 0`.
        nesterov: Nesterov momentum (needs :math:`\mu > 0`, :math:`\tau = 0`).
        maximize: ascend.
        l1: :math:`\lambda_1 \ge 0`.
        master_weights, store_param_remainders, state_dtype, stochastic_rounding, seed: the
            storage options (module docstring).

    State per parameter: ``"step"``, and ``"momentum_buffer"`` (:math:`b`) when
    ``momentum != 0``.

    Raises:
        ValueError: storage options the parameters do not take (:func:`check_precision`);
            negative ``lr``, ``momentum``, ``weight_decay`` or ``l1``; ``nesterov``
            with ``momentum == 0`` or ``dampening != 0``; empty ``params``; a parameter that
            is not C-contiguous or not writeable.
        TypeError: a parameter that is not a float32, float64, bfloat16 or float16 numpy
            array, or parameters of different dtypes; a ``state_dtype`` not allowed; a hyperparameter
            that is not a real number.
    """

    def __init__(self, params: HostArray | Iterable[HostArray], lr: LearningRate = 1e-3,
                 momentum: float = 0, dampening: float = 0, weight_decay: float = 0,
                 nesterov: bool = False, maximize: bool = False, l1: float = 0, *,
                 master_weights: bool = False, store_param_remainders: bool = False,
                 state_dtype: Any = None, stochastic_rounding: bool = False,
                 seed: int | None = None) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=bool(nesterov),
                                      maximize=bool(maximize), l1=l1,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding, seed)))

    @staticmethod
    def _check_hyperparameters(hp: Hyperparameters) -> None:
        _core.check_nonnegative(hp["momentum"], "momentum")
        _core.check_real(hp["dampening"], "dampening")
        if hp["nesterov"] and (hp["momentum"] <= 0 or hp["dampening"] != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening == 0")

    @staticmethod
    def _state_names(hp: Hyperparameters) -> list[str]:
        return ["momentum_buffer"] if hp["momentum"] != 0 else []

    @staticmethod
    def _apply(ops: ModuleType, hp: Hyperparameters, params: list[HostArray],
               grads: list[HostArray], states: list[ParameterState], lr: float,
               storage: dict[str, Any]) -> None:
        common = dict(weight_decay=hp["weight_decay"], l1=hp["l1"], maximize=hp["maximize"])
        if hp["momentum"] == 0:
            ops.sgd_step(params, grads, lr=lr, **common, **storage)
            return
        # torch: a parameter's first momentum step sets b = g'; later ones b = mu*b + (1-damp)*g'
        ops.sgdm_step(params, grads, _gather(states, "momentum_buffer"), lr=lr,
                      momentum=hp["momentum"], dampening=hp["dampening"],
                      nesterov=hp["nesterov"], first_step=[st["step"] == 1 for st in states],
                      **common, **storage)


class Adagrad(_Optimizer):
    r"""Adagrad (``torch.optim.Adagrad``).

    Each step is :func:`nnfast.adagrad_step` (whose docstring has the update, with its
    learning-rate decay) with each parameter's own step count and sums starting at
    ``initial_accumulator_value`` instead of 0. The lesson's Adagrad has
    :math:`\epsilon = 0`; Keras starts the sums at 0.1 and uses :math:`\epsilon = 10^{-7}`;
    optax puts :math:`\epsilon` inside the square root. torch allocates the sums when the
    optimizer is built; here they appear on the first step (same results).

    Args:
        params: the parameters, a NumPy array or an iterable of them.
        lr: learning rate :math:`\eta \ge 0`, or a callable of the steps taken.
        lr_decay: :math:`\gamma \ge 0`.
        weight_decay: coupled L2 :math:`\lambda_2 \ge 0`.
        initial_accumulator_value: :math:`s_0 \ge 0`.
        eps: :math:`\epsilon \ge 0`.
        maximize: ascend.
        l1: :math:`\lambda_1 \ge 0`.
        master_weights, store_param_remainders, state_dtype, stochastic_rounding, seed: the
            storage options (module docstring).

    State per parameter: ``"step"`` and ``"sum"`` (:math:`s`).

    Raises:
        ValueError: storage options the parameters do not take (:func:`check_precision`);
            negative ``lr``, ``lr_decay``, ``weight_decay``, ``l1``,
            ``initial_accumulator_value`` or ``eps``; empty ``params``; a parameter that is
            not C-contiguous or not writeable.
        TypeError: a parameter that is not a float32, float64, bfloat16 or float16 numpy
            array, or parameters of different dtypes; a ``state_dtype`` not allowed; a hyperparameter
            that is not a real number.
    """

    def __init__(self, params: HostArray | Iterable[HostArray], lr: LearningRate = 1e-2,
                 lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10,
                 maximize: bool = False, l1: float = 0, *,
                 master_weights: bool = False, store_param_remainders: bool = False,
                 state_dtype: Any = None, stochastic_rounding: bool = False,
                 seed: int | None = None) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=bool(maximize), l1=l1,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding, seed)))

    @staticmethod
    def _check_hyperparameters(hp: Hyperparameters) -> None:
        _core.check_nonnegative(hp["lr_decay"], "lr_decay")
        _core.check_nonnegative(hp["initial_accumulator_value"], "initial_accumulator_value")
        _core.check_nonnegative(hp["eps"], "eps")

    @staticmethod
    def _state_names(hp: Hyperparameters) -> list[str]:
        return ["sum"]

    def _initial_state(self, p: HostArray, name: str, dtype: Any) -> HostArray:
        return np.full(p.shape, self.hyperparameters["initial_accumulator_value"], dtype)

    @staticmethod
    def _apply(ops: ModuleType, hp: Hyperparameters, params: list[HostArray],
               grads: list[HostArray], states: list[ParameterState], lr: float,
               storage: dict[str, Any]) -> None:
        ops.adagrad_step(params, grads, _gather(states, "sum"), lr=lr, lr_decay=hp["lr_decay"],
                         eps=hp["eps"], weight_decay=hp["weight_decay"], l1=hp["l1"],
                         maximize=hp["maximize"], **{"step": _steps(states), **storage})


class RMSprop(_Optimizer):
    r"""RMSprop (``torch.optim.RMSprop``).

    Each step is :func:`nnfast.rmsprop_step` (whose docstring has the update) with this
    optimizer's arguments, all state starting at zero. The lesson's RMSProp is
    :math:`\alpha = \beta = 0.9`, :math:`\epsilon = 0`; Keras defaults to rho 0.9 and puts
    :math:`\epsilon` (1e-7) inside the square root.

    Args:
        params: the parameters, a NumPy array or an iterable of them.
        lr: learning rate :math:`\eta \ge 0`, or a callable of the steps taken.
        alpha: smoothing constant :math:`\alpha \in [0, 1]`.
        eps: :math:`\epsilon \ge 0`.
        weight_decay: coupled L2 :math:`\lambda_2 \ge 0`.
        momentum: :math:`\mu \ge 0`.
        centered: subtract the squared mean gradient.
        maximize: ascend.
        l1: :math:`\lambda_1 \ge 0`.
        master_weights, store_param_remainders, state_dtype, stochastic_rounding, seed: the
            storage options (module docstring).

    State per parameter: ``"step"``, ``"square_avg"`` (:math:`q`), ``"momentum_buffer"``
    (:math:`b`) when ``momentum > 0``, ``"grad_avg"`` (:math:`c`) when ``centered``.

    Raises:
        ValueError: storage options the parameters do not take (:func:`check_precision`);
            negative ``lr``, ``eps``, ``momentum``, ``weight_decay`` or ``l1``;
            ``alpha`` outside [0, 1]; empty ``params``; a parameter that is not C-contiguous
            or not writeable.
        TypeError: a parameter that is not a float32, float64, bfloat16 or float16 numpy
            array, or parameters of different dtypes; a ``state_dtype`` not allowed; a hyperparameter
            that is not a real number.
    """

    def __init__(self, params: HostArray | Iterable[HostArray], lr: LearningRate = 1e-2,
                 alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False, maximize: bool = False,
                 l1: float = 0, *, master_weights: bool = False, store_param_remainders: bool = False,
                 state_dtype: Any = None, stochastic_rounding: bool = False,
                 seed: int | None = None) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=bool(centered),
                                      maximize=bool(maximize), l1=l1,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding, seed)))

    @staticmethod
    def _check_hyperparameters(hp: Hyperparameters) -> None:
        _core.check_unit_interval(hp["alpha"], "alpha", True)
        _core.check_nonnegative(hp["eps"], "eps")
        _core.check_nonnegative(hp["momentum"], "momentum")

    @staticmethod
    def _state_names(hp: Hyperparameters) -> list[str]:
        return (["square_avg"] + (["momentum_buffer"] if hp["momentum"] > 0 else [])
                + (["grad_avg"] if hp["centered"] else []))

    @staticmethod
    def _apply(ops: ModuleType, hp: Hyperparameters, params: list[HostArray],
               grads: list[HostArray], states: list[ParameterState], lr: float,
               storage: dict[str, Any]) -> None:
        ops.rmsprop_step(
            params, grads, _gather(states, "square_avg"),
            lr=lr, alpha=hp["alpha"], eps=hp["eps"], weight_decay=hp["weight_decay"],
            l1=hp["l1"], maximize=hp["maximize"], momentum=hp["momentum"],
            momentum_buffers=_gather(states, "momentum_buffer") if hp["momentum"] > 0 else None,
            centered=hp["centered"],
            grad_avgs=_gather(states, "grad_avg") if hp["centered"] else None, **storage)


def _check_betas(betas: Any, include_one: bool) -> None:
    """betas: a pair, each in [0, 1) (or [0, 1] with include_one)."""
    if not isinstance(betas, tuple) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    _core.check_unit_interval(betas[0], "betas[0]", include_one)
    _core.check_unit_interval(betas[1], "betas[1]", include_one)


class _Moments(_Optimizer):
    """The Adam family's shared checks (betas, eps) and state arrays (m and v: Adam adds
    AMSGrad's maximum)."""

    @staticmethod
    def _check_hyperparameters(hp: Hyperparameters) -> None:
        _check_betas(hp["betas"], include_one=False)
        _core.check_nonnegative(hp["eps"], "eps")

    @staticmethod
    def _state_names(hp: Hyperparameters) -> list[str]:
        return ["exp_avg", "exp_avg_sq"]


class Adam(_Moments):
    r"""Adam, AMSGrad and (with ``decoupled_weight_decay``) AdamW (``torch.optim.Adam``).

    Each step is :func:`nnfast.adam_step` (whose docstring has the update) with
    ``beta1, beta2 = betas``, ``step`` the parameter's own step count :math:`t` and all
    state starting at zero. The lesson's Adam has no :math:`\epsilon`. Keras adds its
    :math:`\hat\epsilon` (1e-7) to :math:`\sqrt{v_t}` before bias correction; optax takes
    the AMSGrad maximum of the bias-corrected :math:`v`, torch and nnfast of the raw
    :math:`v`.

    Args:
        params: the parameters, a NumPy array or an iterable of them.
        lr: learning rate :math:`\eta \ge 0`, or a callable of the steps taken.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon \ge 0`.
        weight_decay: :math:`\lambda \ge 0`, coupled L2 unless ``decoupled_weight_decay``.
        amsgrad: use the running maximum of :math:`v`.
        maximize: ascend.
        decoupled_weight_decay: AdamW's decay, :math:`p \leftarrow p (1 - \eta\lambda)`.
        l1: :math:`\lambda_1 \ge 0` (always coupled).
        master_weights, store_param_remainders, state_dtype, stochastic_rounding, seed: the
            storage options (module docstring).

    State per parameter: ``"step"``, ``"exp_avg"`` (:math:`m`), ``"exp_avg_sq"``
    (:math:`v`), and ``"max_exp_avg_sq"`` (:math:`\hat v`) with ``amsgrad``.

    Raises:
        ValueError: storage options the parameters do not take (:func:`check_precision`);
            negative ``lr``, ``eps``, ``weight_decay`` or ``l1``; a beta outside
            [0, 1) or ``betas`` not a pair; empty ``params``; a parameter that is not
            C-contiguous or not writeable.
        TypeError: a parameter that is not a float32, float64, bfloat16 or float16 numpy
            array, or parameters of different dtypes; a ``state_dtype`` not allowed; a hyperparameter
            that is not a real number.
    """

    def __init__(self, params: HostArray | Iterable[HostArray], lr: LearningRate = 1e-3,
                 betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, maximize: bool = False,
                 decoupled_weight_decay: bool = False, l1: float = 0, *,
                 master_weights: bool = False, store_param_remainders: bool = False,
                 state_dtype: Any = None, stochastic_rounding: bool = False,
                 seed: int | None = None) -> None:
        betas = tuple(betas)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=bool(amsgrad), maximize=bool(maximize),
                                      decoupled_weight_decay=bool(decoupled_weight_decay),
                                      l1=l1,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding, seed)))

    @staticmethod
    def _state_names(hp: Hyperparameters) -> list[str]:
        return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if hp["amsgrad"] else [])

    @staticmethod
    def _apply(ops: ModuleType, hp: Hyperparameters, params: list[HostArray],
               grads: list[HostArray], states: list[ParameterState], lr: float,
               storage: dict[str, Any]) -> None:
        beta1, beta2 = hp["betas"]
        ops.adam_step(
            params, grads, _gather(states, "exp_avg"), _gather(states, "exp_avg_sq"),
            lr=lr, beta1=beta1, beta2=beta2, eps=hp["eps"],
            weight_decay=hp["weight_decay"], l1=hp["l1"],
            decoupled_weight_decay=hp["decoupled_weight_decay"], amsgrad=hp["amsgrad"],
            max_exp_avg_sqs=_gather(states, "max_exp_avg_sq") if hp["amsgrad"] else None,
            maximize=hp["maximize"], **{"step": _steps(states), **storage})


class AdamW(Adam):
    r"""AdamW (``torch.optim.AdamW``): :class:`Adam` with decoupled weight decay, default 1e-2.

    Each step is :func:`nnfast.adamw_step` (:func:`nnfast.adam_step` with
    ``decoupled_weight_decay=True``): the decay multiplies the parameter before the Adam
    update (torch, optax); bitsandbytes decays after it. Arguments, state and errors as
    :class:`Adam`, without ``decoupled_weight_decay``.
    """

    def __init__(self, params: HostArray | Iterable[HostArray], lr: LearningRate = 1e-3,
                 betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False,
                 l1: float = 0, *, master_weights: bool = False,
                 store_param_remainders: bool = False, state_dtype: Any = None,
                 stochastic_rounding: bool = False, seed: int | None = None) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True,
                         l1=l1, master_weights=master_weights,
                         store_param_remainders=store_param_remainders,
                         state_dtype=state_dtype, stochastic_rounding=stochastic_rounding,
                         seed=seed)


class NAdam(_Moments):
    r"""NAdam (``torch.optim.NAdam``).

    Each step is :func:`nnfast.nadam_step` (whose docstring has the update) with
    ``beta1, beta2 = betas``, ``step`` the parameter's own step count :math:`t`, and
    ``mu_product`` the parameter's running product :math:`P_t = P_{t-1}\,\mu_t` from
    :math:`P_0 = 1`, multiplied in the state's dtype (float32) as torch multiplies its
    ``mu_product`` tensor, so long runs stay equal to torch's step for step. Moments start
    at zero.

    Args:
        params: the parameters, a NumPy array or an iterable of them.
        lr: learning rate :math:`\eta \ge 0`, or a callable of the steps taken.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon \ge 0`.
        weight_decay: :math:`\lambda \ge 0`, coupled L2 unless ``decoupled_weight_decay``.
        momentum_decay: :math:`\psi \ge 0`.
        decoupled_weight_decay: decay the parameters directly, :math:`p \leftarrow p (1 -
            \eta\lambda)` (torch's NAdamW).
        maximize: ascend.
        l1: :math:`\lambda_1 \ge 0` (always coupled).
        master_weights, store_param_remainders, state_dtype, stochastic_rounding, seed: the
            storage options (module docstring).

    State per parameter: ``"step"``, ``"mu_product"`` (:math:`P_t`, a 0-d float32 array),
    ``"exp_avg"`` (:math:`m`), ``"exp_avg_sq"`` (:math:`v`).

    Raises:
        ValueError: storage options the parameters do not take (:func:`check_precision`);
            negative ``lr``, ``eps``, ``weight_decay``, ``momentum_decay`` or ``l1``; a beta
            outside [0, 1) or ``betas`` not a pair; empty ``params``; a parameter that is not
            C-contiguous or not writeable.
        TypeError: a parameter that is not a float32, float64, bfloat16 or float16 numpy
            array, or parameters of different dtypes; a ``state_dtype`` not allowed; a
            hyperparameter that is not a real number.
    """

    _scalar_states = {"mu_product": 1.0}

    def __init__(self, params: HostArray | Iterable[HostArray], lr: LearningRate = 2e-3,
                 betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, maximize: bool = False, l1: float = 0,
                 *, master_weights: bool = False, store_param_remainders: bool = False,
                 state_dtype: Any = None, stochastic_rounding: bool = False,
                 seed: int | None = None) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, momentum_decay=momentum_decay,
                                      decoupled_weight_decay=bool(decoupled_weight_decay),
                                      maximize=bool(maximize), l1=l1,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding, seed)))

    @staticmethod
    def _check_hyperparameters(hp: Hyperparameters) -> None:
        _Moments._check_hyperparameters(hp)
        _core.check_nonnegative(hp["momentum_decay"], "momentum_decay")

    @staticmethod
    def _apply(ops: ModuleType, hp: Hyperparameters, params: list[HostArray],
               grads: list[HostArray], states: list[ParameterState], lr: float,
               storage: dict[str, Any]) -> None:
        beta1, beta2 = hp["betas"]
        # P_t = P_{t-1} * mu_t in the dtype of the stored product (a 0-d array: NumPy's, or
        # a torch tensor's), mu_t rounded to it first, as torch's `mu_product *= mu`; stored
        # only once the kernel has run.
        products = [_times(st["mu_product"], _core.nadam_momentum(beta1, hp["momentum_decay"],
                                                                 st["step"]))
                    for st in states]
        ops.nadam_step(
            params, grads, _gather(states, "exp_avg"), _gather(states, "exp_avg_sq"),
            mu_product=[float(x) for x in products], lr=lr, beta1=beta1, beta2=beta2,
            eps=hp["eps"], weight_decay=hp["weight_decay"], l1=hp["l1"],
            momentum_decay=hp["momentum_decay"],
            decoupled_weight_decay=hp["decoupled_weight_decay"], maximize=hp["maximize"],
            **{"step": _steps(states), **storage})
        if not _skips(storage.get("found_inf")):
            for st, product in zip(states, products):
                st["mu_product"][...] = product


class RAdam(_Moments):
    r"""RAdam (``torch.optim.RAdam``).

    Each step is :func:`nnfast.radam_step` (whose docstring has the update, both of its
    branches) with ``beta1, beta2 = betas``, ``step`` the parameter's own step count
    :math:`t` (so parameters at different counts take their own branch) and the moments
    starting at zero.

    Args:
        params: the parameters, a NumPy array or an iterable of them.
        lr: learning rate :math:`\eta \ge 0`, or a callable of the steps taken.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon \ge 0`.
        weight_decay: :math:`\lambda \ge 0`, coupled L2 unless ``decoupled_weight_decay``.
        decoupled_weight_decay: decay the parameters directly, :math:`p \leftarrow p (1 -
            \eta\lambda)` (torch's RAdamW).
        maximize: ascend.
        l1: :math:`\lambda_1 \ge 0` (always coupled).
        master_weights, store_param_remainders, state_dtype, stochastic_rounding, seed: the
            storage options (module docstring).

    State per parameter: ``"step"``, ``"exp_avg"`` (:math:`m`), ``"exp_avg_sq"``
    (:math:`v`).

    Raises:
        ValueError: storage options the parameters do not take (:func:`check_precision`);
            negative ``lr``, ``eps``, ``weight_decay`` or ``l1``; a beta outside [0, 1) or
            ``betas`` not a pair; empty ``params``; a parameter that is not C-contiguous or
            not writeable.
        TypeError: a parameter that is not a float32, float64, bfloat16 or float16 numpy
            array, or parameters of different dtypes; a ``state_dtype`` not allowed; a
            hyperparameter that is not a real number.
    """

    def __init__(self, params: HostArray | Iterable[HostArray], lr: LearningRate = 1e-3,
                 betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False,
                 maximize: bool = False, l1: float = 0, *, master_weights: bool = False,
                 store_param_remainders: bool = False, state_dtype: Any = None,
                 stochastic_rounding: bool = False, seed: int | None = None) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay,
                                      decoupled_weight_decay=bool(decoupled_weight_decay),
                                      maximize=bool(maximize), l1=l1,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding, seed)))

    @staticmethod
    def _apply(ops: ModuleType, hp: Hyperparameters, params: list[HostArray],
               grads: list[HostArray], states: list[ParameterState], lr: float,
               storage: dict[str, Any]) -> None:
        beta1, beta2 = hp["betas"]
        ops.radam_step(
            params, grads, _gather(states, "exp_avg"), _gather(states, "exp_avg_sq"),
            lr=lr, beta1=beta1, beta2=beta2, eps=hp["eps"], weight_decay=hp["weight_decay"],
            l1=hp["l1"], decoupled_weight_decay=hp["decoupled_weight_decay"],
            maximize=hp["maximize"], **{"step": _steps(states), **storage})


class LAMB(_Optimizer):
    r"""LAMB (You et al., 2020) with the semantics of apex's ``FusedLAMB``.

    Each step is :func:`nnfast.lamb_step` (whose docstring has the update and its three
    passes) over every parameter with a gradient, with ``beta1, beta2 = betas``, ``step``
    the parameter's own step count and all state starting at zero: the gradients are
    clipped by their global norm (``max_grad_norm``), then each parameter's Adam-style
    direction :math:`u` is scaled by its trust ratio :math:`\lVert p \rVert /
    \lVert u \rVert`.

    Args:
        params: the parameters, a NumPy array or an iterable of them.
        lr: learning rate :math:`\eta \ge 0`, or a callable of the steps taken.
        bias_correction: divide the moments by :math:`1 - \beta^t`.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon \ge 0`.
        weight_decay: :math:`\lambda \ge 0`, decoupled with ``adam_w_mode``, else L2.
        adam_w_mode: add :math:`\lambda p` to the direction instead of the gradient.
        grad_averaging: the first moment takes :math:`(1 - \beta_1) g'` (else :math:`g'`).
        max_grad_norm: :math:`\mu \ge 0`, the global norm the gradients are clipped to
            (0: no clipping).
        use_nvlamb: apply the trust ratio even when :math:`\lambda = 0`.
        maximize: ascend.
        master_weights, store_param_remainders, state_dtype, stochastic_rounding, seed: the
            storage options (module docstring).

    State per parameter: ``"step"``, ``"exp_avg"`` (:math:`m`), ``"exp_avg_sq"``
    (:math:`v`).

    Raises:
        ValueError: storage options the parameters do not take (:func:`check_precision`);
            negative ``lr``, ``eps``, ``weight_decay`` or ``max_grad_norm``; a beta outside
            [0, 1) or ``betas`` not a pair; empty ``params``; a parameter that is not
            C-contiguous or not writeable.
        TypeError: a parameter that is not a float32, float64, bfloat16 or float16 numpy
            array, or parameters of different dtypes; a ``state_dtype`` not allowed; a
            hyperparameter that is not a real number.
    """

    def __init__(self, params: HostArray | Iterable[HostArray], lr: LearningRate = 1e-3,
                 bias_correction: bool = True, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.01, adam_w_mode: bool = True,
                 grad_averaging: bool = True, max_grad_norm: float = 1.0,
                 use_nvlamb: bool = False, maximize: bool = False, *,
                 master_weights: bool = False, store_param_remainders: bool = False,
                 state_dtype: Any = None, stochastic_rounding: bool = False,
                 seed: int | None = None) -> None:
        super().__init__(params, dict(lr=lr, bias_correction=bool(bias_correction),
                                      betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      adam_w_mode=bool(adam_w_mode),
                                      grad_averaging=bool(grad_averaging),
                                      max_grad_norm=max_grad_norm, use_nvlamb=bool(use_nvlamb),
                                      maximize=bool(maximize), l1=0.0,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding, seed)))

    @staticmethod
    def _check_hyperparameters(hp: Hyperparameters) -> None:
        _Moments._check_hyperparameters(hp)
        _core.check_nonnegative(hp["max_grad_norm"], "max_grad_norm")

    @staticmethod
    def _state_names(hp: Hyperparameters) -> list[str]:
        return ["exp_avg", "exp_avg_sq"]

    @staticmethod
    def _apply(ops: ModuleType, hp: Hyperparameters, params: list[HostArray],
               grads: list[HostArray], states: list[ParameterState], lr: float,
               storage: dict[str, Any]) -> None:
        beta1, beta2 = hp["betas"]
        ops.lamb_step(
            params, grads, _gather(states, "exp_avg"), _gather(states, "exp_avg_sq"),
            lr=lr, beta1=beta1, beta2=beta2, eps=hp["eps"], weight_decay=hp["weight_decay"],
            bias_correction=hp["bias_correction"], adam_w_mode=hp["adam_w_mode"],
            grad_averaging=hp["grad_averaging"], max_grad_norm=hp["max_grad_norm"],
            use_nvlamb=hp["use_nvlamb"], maximize=hp["maximize"],
            **{"step": _steps(states), **storage})


class Lion(_Optimizer):
    r"""Lion (Chen et al., 2023), step for step equal to lion-pytorch's ``Lion``.

    Each step is :func:`nnfast.lion_step` (whose docstring has the update) with
    ``beta1, beta2 = betas`` and the momentum starting at zero. The weight decay is
    decoupled, :math:`p \leftarrow p(1 - \eta\lambda)`, as lion-pytorch's default (its
    ``decoupled_weight_decay=True`` divides :math:`\lambda` by the initial lr: pass that
    quotient as ``weight_decay`` here). Lion's updates have size :math:`\eta` per element, so
    its learning rate is typically 3-10x smaller than AdamW's and its decay larger.

    Args:
        params: the parameters, a NumPy array or an iterable of them.
        lr: learning rate :math:`\eta \ge 0`, or a callable of the steps taken.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1].
        weight_decay: decoupled :math:`\lambda \ge 0`.
        maximize: ascend.
        l1: :math:`\lambda_1 \ge 0` (coupled, in :math:`g'`).
        master_weights, store_param_remainders, state_dtype, stochastic_rounding, seed: the
            storage options (module docstring).

    State per parameter: ``"step"`` and ``"exp_avg"`` (:math:`m`).

    Raises:
        ValueError: storage options the parameters do not take (:func:`check_precision`);
            negative ``lr``, ``weight_decay`` or ``l1``; a beta outside [0, 1] or ``betas``
            not a pair; empty ``params``; a parameter that is not C-contiguous or not
            writeable.
        TypeError: a parameter that is not a float32, float64, bfloat16 or float16 numpy
            array, or parameters of different dtypes; a ``state_dtype`` not allowed; a
            hyperparameter that is not a real number.
    """

    def __init__(self, params: HostArray | Iterable[HostArray], lr: LearningRate = 1e-4,
                 betas: Sequence[float] = (0.9, 0.99), weight_decay: float = 0,
                 maximize: bool = False, l1: float = 0, *, master_weights: bool = False,
                 store_param_remainders: bool = False, state_dtype: Any = None,
                 stochastic_rounding: bool = False, seed: int | None = None) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay,
                                      maximize=bool(maximize), l1=l1,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding, seed)))

    @staticmethod
    def _check_hyperparameters(hp: Hyperparameters) -> None:
        _check_betas(hp["betas"], include_one=True)

    @staticmethod
    def _state_names(hp: Hyperparameters) -> list[str]:
        return ["exp_avg"]

    @staticmethod
    def _apply(ops: ModuleType, hp: Hyperparameters, params: list[HostArray],
               grads: list[HostArray], states: list[ParameterState], lr: float,
               storage: dict[str, Any]) -> None:
        beta1, beta2 = hp["betas"]
        ops.lion_step(params, grads, _gather(states, "exp_avg"), lr=lr, beta1=beta1,
                      beta2=beta2, weight_decay=hp["weight_decay"], l1=hp["l1"],
                      maximize=hp["maximize"], **storage)


class Adamax(_Optimizer):
    r"""Adamax (``torch.optim.Adamax``).

    Each step is :func:`nnfast.adamax_step` (whose docstring has the update) with
    ``beta1, beta2 = betas``, ``step`` the parameter's own step count :math:`t` and both
    states starting at zero. Keras adds :math:`\epsilon` outside the max, with defaults
    ``learning_rate=1e-3``, ``epsilon=1e-7``.

    Args:
        params: the parameters, a NumPy array or an iterable of them.
        lr: learning rate :math:`\eta \ge 0`, or a callable of the steps taken.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon \ge 0`.
        weight_decay: coupled L2 :math:`\lambda_2 \ge 0`.
        maximize: ascend.
        l1: :math:`\lambda_1 \ge 0`.
        master_weights, store_param_remainders, state_dtype, stochastic_rounding, seed: the
            storage options (module docstring).

    State per parameter: ``"step"``, ``"exp_avg"`` (:math:`m`) and ``"exp_inf"``
    (:math:`u`).

    Raises:
        ValueError: storage options the parameters do not take (:func:`check_precision`);
            negative ``lr``, ``eps``, ``weight_decay`` or ``l1``; a beta outside [0, 1) or
            ``betas`` not a pair; empty ``params``; a parameter that is not C-contiguous or
            not writeable.
        TypeError: a parameter that is not a float32, float64, bfloat16 or float16 numpy
            array, or parameters of different dtypes; a ``state_dtype`` not allowed; a
            hyperparameter that is not a real number.
    """

    def __init__(self, params: HostArray | Iterable[HostArray], lr: LearningRate = 2e-3,
                 betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, maximize: bool = False, l1: float = 0, *,
                 master_weights: bool = False, store_param_remainders: bool = False,
                 state_dtype: Any = None, stochastic_rounding: bool = False,
                 seed: int | None = None) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, maximize=bool(maximize), l1=l1,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding, seed)))

    @staticmethod
    def _check_hyperparameters(hp: Hyperparameters) -> None:
        _Moments._check_hyperparameters(hp)

    @staticmethod
    def _state_names(hp: Hyperparameters) -> list[str]:
        return ["exp_avg", "exp_inf"]

    @staticmethod
    def _apply(ops: ModuleType, hp: Hyperparameters, params: list[HostArray],
               grads: list[HostArray], states: list[ParameterState], lr: float,
               storage: dict[str, Any]) -> None:
        beta1, beta2 = hp["betas"]
        ops.adamax_step(params, grads, _gather(states, "exp_avg"), _gather(states, "exp_inf"),
                        lr=lr, beta1=beta1, beta2=beta2, eps=hp["eps"],
                        weight_decay=hp["weight_decay"], l1=hp["l1"], maximize=hp["maximize"],
                        **{"step": _steps(states), **storage})


class Adadelta(_Optimizer):
    r"""Adadelta (``torch.optim.Adadelta``).

    Each step is :func:`nnfast.adadelta_step` (whose docstring has the update) with both
    running averages starting at zero. The paper has no learning rate (torch's default
    ``lr=1.0``); Keras defaults to ``rho=0.95``, ``epsilon=1e-7``.

    Args:
        params: the parameters, a NumPy array or an iterable of them.
        lr: learning rate :math:`\eta \ge 0`, or a callable of the steps taken.
        rho: :math:`\rho \in [0, 1]`.
        eps: :math:`\epsilon \ge 0`.
        weight_decay: coupled L2 :math:`\lambda_2 \ge 0`.
        maximize: ascend.
        l1: :math:`\lambda_1 \ge 0`.
        master_weights, store_param_remainders, state_dtype, stochastic_rounding, seed: the
            storage options (module docstring).

    State per parameter: ``"step"``, ``"square_avg"`` (:math:`v`) and ``"acc_delta"``
    (:math:`u`).

    Raises:
        ValueError: storage options the parameters do not take (:func:`check_precision`);
            negative ``lr``, ``eps``, ``weight_decay`` or ``l1``; ``rho`` outside [0, 1];
            empty ``params``; a parameter that is not C-contiguous or not writeable.
        TypeError: a parameter that is not a float32, float64, bfloat16 or float16 numpy
            array, or parameters of different dtypes; a ``state_dtype`` not allowed; a
            hyperparameter that is not a real number.
    """

    def __init__(self, params: HostArray | Iterable[HostArray], lr: LearningRate = 1.0,
                 rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
                 maximize: bool = False, l1: float = 0, *, master_weights: bool = False,
                 store_param_remainders: bool = False, state_dtype: Any = None,
                 stochastic_rounding: bool = False, seed: int | None = None) -> None:
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=bool(maximize), l1=l1,
                                      **_precision(master_weights, store_param_remainders, state_dtype,
                                                   stochastic_rounding, seed)))

    @staticmethod
    def _check_hyperparameters(hp: Hyperparameters) -> None:
        _core.check_unit_interval(hp["rho"], "rho", True)
        _core.check_nonnegative(hp["eps"], "eps")

    @staticmethod
    def _state_names(hp: Hyperparameters) -> list[str]:
        return ["square_avg", "acc_delta"]

    @staticmethod
    def _apply(ops: ModuleType, hp: Hyperparameters, params: list[HostArray],
               grads: list[HostArray], states: list[ParameterState], lr: float,
               storage: dict[str, Any]) -> None:
        ops.adadelta_step(params, grads, _gather(states, "square_avg"),
                          _gather(states, "acc_delta"), lr=lr, rho=hp["rho"], eps=hp["eps"],
                          weight_decay=hp["weight_decay"], l1=hp["l1"], maximize=hp["maximize"],
                          **storage)


class Adafactor(_Optimizer):
    r"""Adafactor (``torch.optim.Adafactor``).

    Each step is :func:`nnfast.adafactor_step` (whose docstring has the update) over every
    parameter with a gradient, with ``eps1, eps2 = eps``, ``step`` the parameter's own step
    count :math:`t` and all state starting at zero.

    Args:
        params: the parameters, a NumPy array or an iterable of them.
        lr: :math:`\eta \ge 0` (the cap of the relative step size), or a callable of the
            steps taken.
        beta2_decay: :math:`\hat\beta \le 0`.
        eps: :math:`(\epsilon_1, \epsilon_2)`; :math:`\epsilon_1` None for the machine
            epsilon of the parameters' dtype.
        d: the clipping threshold :math:`d \ge 1`.
        weight_decay: :math:`\lambda \ge 0`, decoupled.
        maximize: ascend.
        master_weights, store_param_remainders, state_dtype, stochastic_rounding, seed: the
            storage options (module docstring).

    State per parameter: ``"step"``, and ``"row_var"`` (:math:`R`, the parameter's shape
    with the last dim 1) and ``"col_var"`` (:math:`C`, the second-to-last dim 1) for a
    parameter of 2 or more dims, ``"variance"`` (:math:`v`, the parameter's shape) for one
    of 0 or 1 dims, as torch names and shapes them.

    Raises:
        ValueError: storage options the parameters do not take (:func:`check_precision`);
            negative ``lr``, ``eps2``, ``weight_decay`` or :math:`\epsilon_1`,
            ``beta2_decay > 0``, ``d < 1``, ``eps`` not a pair; empty ``params``; a parameter
            that is not C-contiguous or not writeable.
        TypeError: a parameter that is not a float32, float64, bfloat16 or float16 numpy
            array, or parameters of different dtypes; a ``state_dtype`` not allowed; a
            hyperparameter that is not a real number.
    """

    def __init__(self, params: HostArray | Iterable[HostArray], lr: LearningRate = 1e-2,
                 beta2_decay: float = -0.8, eps: Sequence[float | None] = (None, 1e-3),
                 d: float = 1.0, weight_decay: float = 0.0, *, maximize: bool = False,
                 master_weights: bool = False, store_param_remainders: bool = False,
                 state_dtype: Any = None, stochastic_rounding: bool = False,
                 seed: int | None = None) -> None:
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d,
                                      weight_decay=weight_decay, maximize=bool(maximize),
                                      l1=0.0, **_precision(master_weights, store_param_remainders,
                                                           state_dtype, stochastic_rounding, seed)))

    @staticmethod
    def _check_hyperparameters(hp: Hyperparameters) -> None:
        _core.check_real(hp["beta2_decay"], "beta2_decay")
        if hp["beta2_decay"] > 0:
            raise ValueError(f"beta2_decay: must be <= 0, got {hp['beta2_decay']}")
        eps = hp["eps"]
        if not isinstance(eps, tuple) or len(eps) != 2:
            raise ValueError(f"eps: expected a pair (eps1 or None, eps2), got {eps!r}")
        if eps[0] is not None:
            _core.check_nonnegative(eps[0], "eps[0] (eps1)")
        _core.check_nonnegative(eps[1], "eps[1] (eps2)")
        _core.check_real(hp["d"], "d")
        if hp["d"] < 1:
            raise ValueError(f"d: must be >= 1, got {hp['d']}")

    @staticmethod
    def _state_names(hp: Hyperparameters) -> list[str]:
        return ["row_var", "col_var", "variance"]

    def _state_names_of(self, hp: Hyperparameters, p: HostArray) -> list[str]:
        return self._moment_names(p)

    @staticmethod
    def _moment_names(p: Any) -> list[str]:
        """The second-moment states of a parameter (an array or tensor): factored over
        its last two dims when it has two or more."""
        return ["row_var", "col_var"] if p.ndim >= 2 else ["variance"]

    @staticmethod
    def _state_shape(name: str, p: HostArray) -> tuple[int, ...]:
        shape = list(p.shape)
        if name == "row_var":
            shape[-1] = 1
        elif name == "col_var":
            shape[-2] = 1
        return tuple(shape)

    @staticmethod
    def _apply(ops: ModuleType, hp: Hyperparameters, params: list[HostArray],
               grads: list[HostArray], states: list[ParameterState], lr: float,
               storage: dict[str, Any]) -> None:
        eps1, eps2 = hp["eps"]
        ops.adafactor_step(
            params, grads, [st.get("row_var") for st in states],
            [st.get("col_var") for st in states], [st.get("variance") for st in states],
            lr=lr, beta2_decay=hp["beta2_decay"], eps1=eps1, eps2=eps2, d=hp["d"],
            weight_decay=hp["weight_decay"], maximize=hp["maximize"],
            **{"step": _steps(states), **storage})
