r"""Stateful optimizers over lists of NumPy arrays, step for step equal to ``torch.optim``.

Each optimizer owns a list of float32/float64 parameter arrays (updated in place) and the
per-parameter state (momentum buffers, moment estimates, ...), allocated lazily on a
parameter's first step as zeros like the parameter, as torch does. ``opt.step(grads)``
takes one gradient per parameter; a ``None`` gradient skips its parameter, whose step
count then does not advance (torch skips parameters without ``.grad``).

``lr`` is a float or a callable ``lr(steps_taken)`` called before each step with the number
of steps already taken (0 on the first), so ``nnfast.schedules.ExponentialDecay`` plugs in.

Notation used in the docstrings: :math:`\eta` the learning rate, :math:`t` the parameter's
own step count (1 on its first update), and :math:`g'_t` the effective gradient

.. math::

    g'_t = \sigma g_t + \lambda p_{t-1} + \lambda_1 \operatorname{sign}(p_{t-1}),
    \qquad \sigma = -1 \text{ if maximize else } 1,

with :math:`\lambda` = ``weight_decay`` (coupled L2) and :math:`\lambda_1` = ``l1``, each term
present only when its coefficient is nonzero.

All the arithmetic is done by the functional steps in ``_ops`` (by default the compiled
kernels in ``nnfast.optimizers``). A subclass with ``_ops = nnfast.reference`` runs the same
optimizer on the NumPy reference.
"""

import copy
import numbers

import numpy as np

from nnfast import _core
from nnfast import optimizers as _kernels

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]


# --------------------------------------------------------------------------- validation


def _check_lr(lr):
    if not callable(lr):
        _core.check_nonnegative(lr, "lr")


def _check_params(params):
    if isinstance(params, np.ndarray):
        params = [params]
    params = list(params)
    if not params:
        raise ValueError("params is empty: an optimizer needs at least one parameter array")
    for i, p in enumerate(params):
        if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
            kind = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
            raise TypeError(f"params[{i}] must be a float32 or float64 numpy array, got {kind}")
        if not (p.flags.c_contiguous and p.flags.writeable):
            raise ValueError(f"params[{i}] must be C-contiguous and writeable (updated in place)")
    return params


def _pick(seq, positions):
    return [seq[k] for k in positions]


def _gather(states, positions, name):
    return [states[k][name] for k in positions]


def _by_step(states):
    """Group positions in ``states`` by their step count: {step: [positions]}, so that
    each kernel call gets one bias correction or learning-rate decay."""
    groups = {}
    for k, st in enumerate(states):
        groups.setdefault(st["step"], []).append(k)
    return groups


# --------------------------------------------------------------------------- base class


class _Optimizer:
    """Shared machinery: argument checks, lazy state, ``step``, ``state_dict``.

    Subclasses define ``_check_hyperparameters(hp)`` (beyond lr, weight_decay and l1, which
    every optimizer has), ``_state_names(hp)`` (the state arrays
    a parameter holds, besides "step"), optionally ``_initial_state(p)`` (default zeros), and
    ``_apply(ops, hp, params, grads, states, lr)``: the kernel calls of one update, given the
    parameters that have a gradient and their state dicts (step count already advanced).
    ``_apply`` and ``_validate`` use nothing of the instance, so ``nnfast.torch`` runs the
    same arithmetic over tensor memory.
    """

    _ops = _kernels

    def __init__(self, params, hyperparameters):
        self.params = _check_params(params)
        self._validate(hyperparameters)
        self.hyperparameters = hyperparameters
        self.state = {}
        self.steps_taken = 0

    @classmethod
    def _validate(cls, hp):
        """The hyperparameters every optimizer has, then the subclass's own."""
        _check_lr(hp["lr"])
        _core.check_nonnegative(hp["weight_decay"], "weight_decay")
        _core.check_nonnegative(hp["l1"], "l1")
        cls._check_hyperparameters(hp)

    def _initial_state(self, p):
        return np.zeros_like(p)

    def _update(self, indices, grads, lr):
        self._apply(self._ops, self.hyperparameters, [self.params[i] for i in indices], grads,
                    [self.state[i] for i in indices], lr)

    # -- public API

    def step(self, grads):
        """Apply one update to every parameter whose gradient is not None.

        Args:
            grads: one gradient per parameter (an array of the parameter's shape and dtype),
                or None to skip that parameter.

        Raises:
            ValueError: ``len(grads) != len(params)``, a gradient of the wrong shape, or a
                negative learning rate from the ``lr`` callable.
            TypeError: a gradient that is not a numpy array of the parameter's dtype.
        """
        if isinstance(grads, np.ndarray):
            grads = [grads]
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"grads has {len(grads)} entries, params has {len(self.params)}")
        # Checked here, not only by the kernels: an update may take several kernel calls
        # (grouped by step count), and no parameter or state may change if any grad is bad.
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if g is None:
                continue
            if not isinstance(g, np.ndarray) or g.dtype != p.dtype:
                kind = g.dtype if isinstance(g, np.ndarray) else type(g).__name__
                raise TypeError(f"grads[{i}] must be a numpy array of dtype {p.dtype}, got {kind}")
            if g.shape != p.shape:
                raise ValueError(f"grads[{i}] has shape {g.shape}, params[{i}] has {p.shape}")
        lr = self.hyperparameters["lr"]
        if callable(lr):
            lr = lr(self.steps_taken)
            _core.check_nonnegative(lr, "lr (the value the lr callable returned)")
        indices = [i for i, g in enumerate(grads) if g is not None]
        names = self._state_names(self.hyperparameters)
        for i in indices:
            if i not in self.state:
                p = self.params[i]
                self.state[i] = {"step": 0, **{n: self._initial_state(p) for n in names}}
            self.state[i]["step"] += 1
        if indices:
            self._update(indices, [grads[i] for i in indices], lr)
        self.steps_taken += 1

    def state_dict(self):
        """A plain snapshot: copies of every state array, the hyperparameters and the counts.

        It pickles whenever ``lr`` does (a float or ``ExponentialDecay`` does; a lambda not).

        Returns ``{"state": {index: {"step": int, name: array, ...}},
        "hyperparameters": {...}, "steps_taken": int}``.
        """
        return {
            "state": {i: {k: v.copy() if isinstance(v, np.ndarray) else v
                          for k, v in st.items()}
                      for i, st in self.state.items()},
            "hyperparameters": copy.deepcopy(self.hyperparameters),
            "steps_taken": self.steps_taken,
        }

    def load_state_dict(self, state_dict):
        """Restore a ``state_dict()`` snapshot exactly (arrays are copied in).

        The whole snapshot is checked before anything changes.

        Raises:
            ValueError: missing or unexpected keys, invalid hyperparameters, a parameter
                index out of range, or a state array whose shape or dtype differs from its
                parameter's.
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
        names = set(self._state_names(hp))
        state = {}
        for i, entry in state_dict["state"].items():
            if not isinstance(i, numbers.Integral) or not 0 <= i < len(self.params):
                raise ValueError(f"state_dict['state'] has index {i!r}; params has "
                                 f"{len(self.params)} entries")
            if not isinstance(entry, dict) or set(entry) != names | {"step"}:
                raise ValueError(f"state_dict['state'][{i}] must have the keys "
                                 f"{sorted(names | {'step'})}")
            step = entry["step"]
            if not isinstance(step, numbers.Integral) or step < 0:
                raise ValueError(f"state_dict['state'][{i}]['step'] must be an integer >= 0, "
                                 f"got {step!r}")
            p = self.params[i]
            for name in names:
                a = entry[name]
                if not isinstance(a, np.ndarray) or a.shape != p.shape or a.dtype != p.dtype:
                    got = (a.shape, a.dtype) if isinstance(a, np.ndarray) else type(a).__name__
                    raise ValueError(f"state_dict['state'][{i}][{name!r}] must be an array of "
                                     f"shape {p.shape} and dtype {p.dtype}, got {got}")
            state[int(i)] = {"step": int(step),
                             **{name: np.array(entry[name], order="C") for name in names}}
        self.hyperparameters = copy.deepcopy(hp)
        self.state = state
        self.steps_taken = int(steps_taken)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({len(self.params)} params, {args})"


# --------------------------------------------------------------------------- optimizers


class SGD(_Optimizer):
    r"""Stochastic gradient descent, optionally with momentum (``torch.optim.SGD``).

    .. math::

        b_1 &= g'_1, \qquad b_t = \mu b_{t-1} + (1 - \tau) g'_t \\
        d_t &= \begin{cases} g'_t + \mu b_t & \text{nesterov} \\
                             b_t & \text{otherwise} \end{cases} \\
        p_t &= p_{t-1} - \eta d_t

    and without momentum (:math:`\mu = 0`) simply :math:`p_t = p_{t-1} - \eta g'_t`.
    Symbols: :math:`\eta` = ``lr``, :math:`\mu` = ``momentum``, :math:`\tau` = ``dampening``,
    :math:`\lambda` = ``weight_decay``, :math:`\lambda_1` = ``l1``.

    The first momentum step copies :math:`g'_1` into the buffer, as torch does. The lesson's
    SGDM (:math:`m_t = \beta m_{t-1} + (1-\beta) g_t` from :math:`m_0 = 0`) differs on that
    first step; use ``nnfast.sgdm_step(..., momentum=beta, dampening=beta)`` for it. Keras
    keeps the learning rate inside the buffer (:math:`v = \mu v - \eta g`), which differs
    from this when the learning rate changes.

    Raises:
        ValueError: negative ``lr``, ``momentum``, ``weight_decay`` or ``l1``; ``nesterov``
            with ``momentum == 0`` or ``dampening != 0``; empty ``params``.
        TypeError: a parameter that is not a float32/float64 numpy array.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, maximize=False, l1=0):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=bool(nesterov),
                                      maximize=bool(maximize), l1=l1))

    @staticmethod
    def _check_hyperparameters(hp):
        _core.check_nonnegative(hp["momentum"], "momentum")
        _core.check_real(hp["dampening"], "dampening")
        if hp["nesterov"] and (hp["momentum"] <= 0 or hp["dampening"] != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening == 0")

    @staticmethod
    def _state_names(hp):
        return ["momentum_buffer"] if hp["momentum"] != 0 else []

    @staticmethod
    def _apply(ops, hp, params, grads, states, lr):
        common = dict(weight_decay=hp["weight_decay"], l1=hp["l1"], maximize=hp["maximize"])
        if hp["momentum"] == 0:
            ops.sgd_step(params, grads, lr=lr, **common)
            return
        momentum = dict(lr=lr, momentum=hp["momentum"], nesterov=hp["nesterov"], **common)
        # torch: a parameter's first momentum step sets b = g'; later ones b = mu*b + (1-damp)*g'
        first = [k for k, st in enumerate(states) if st["step"] == 1]
        later = [k for k, st in enumerate(states) if st["step"] > 1]
        if first:
            ops._sgdm_first_step(_pick(params, first), _pick(grads, first),
                                 _gather(states, first, "momentum_buffer"), **momentum)
        if later:
            ops.sgdm_step(_pick(params, later), _pick(grads, later),
                          _gather(states, later, "momentum_buffer"),
                          dampening=hp["dampening"], **momentum)


class Adagrad(_Optimizer):
    r"""Adagrad (``torch.optim.Adagrad``).

    .. math::

        s_0 &= s_{\text{init}}, \qquad s_t = s_{t-1} + g'^2_t \\
        \eta_t &= \frac{\eta}{1 + (t - 1)\gamma} \\
        p_t &= p_{t-1} - \eta_t \frac{g'_t}{\sqrt{s_t} + \epsilon}

    Symbols: :math:`\eta` = ``lr``, :math:`\gamma` = ``lr_decay``,
    :math:`s_{\text{init}}` = ``initial_accumulator_value``, :math:`\epsilon` = ``eps``,
    :math:`\lambda` = ``weight_decay``, :math:`\lambda_1` = ``l1``.

    The lesson's Adagrad has :math:`\epsilon = 0`; Keras starts :math:`s` at 0.1 and uses
    :math:`\epsilon = 10^{-7}`; optax puts :math:`\epsilon` inside the square root.
    torch allocates the sums when the optimizer is built; here they appear on the first step
    (same results).

    Raises:
        ValueError: negative ``lr``, ``lr_decay``, ``weight_decay``, ``l1``,
            ``initial_accumulator_value`` or ``eps``; empty ``params``.
        TypeError: a parameter that is not a float32/float64 numpy array.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, maximize=False, l1=0):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=bool(maximize), l1=l1))

    @staticmethod
    def _check_hyperparameters(hp):
        _core.check_nonnegative(hp["lr_decay"], "lr_decay")
        _core.check_nonnegative(hp["initial_accumulator_value"], "initial_accumulator_value")
        _core.check_nonnegative(hp["eps"], "eps")

    @staticmethod
    def _state_names(hp):
        return ["sum"]

    def _initial_state(self, p):
        return np.full_like(p, self.hyperparameters["initial_accumulator_value"])

    @staticmethod
    def _apply(ops, hp, params, grads, states, lr):
        for step, group in _by_step(states).items():
            # torch: clr = lr / (1 + (step - 1) * lr_decay)
            clr = lr / (1 + (step - 1) * hp["lr_decay"])
            ops.adagrad_step(_pick(params, group), _pick(grads, group),
                             _gather(states, group, "sum"), lr=clr, eps=hp["eps"],
                             weight_decay=hp["weight_decay"], l1=hp["l1"],
                             maximize=hp["maximize"])


class RMSprop(_Optimizer):
    r"""RMSprop (``torch.optim.RMSprop``).

    .. math::

        v_t &= \alpha v_{t-1} + (1 - \alpha) g'^2_t \\
        c_t &= \alpha c_{t-1} + (1 - \alpha) g'_t \quad \text{(centered only)} \\
        a_t &= \sqrt{v_t - c_t^2} + \epsilon \ \text{(centered)}, \qquad
               a_t = \sqrt{v_t} + \epsilon \ \text{(otherwise)} \\
        b_t &= \mu b_{t-1} + g'_t / a_t, \qquad p_t = p_{t-1} - \eta b_t
               \quad \text{if } \mu > 0 \\
        p_t &= p_{t-1} - \eta g'_t / a_t \quad \text{if } \mu = 0

    with :math:`v_0 = c_0 = b_0 = 0`. Symbols: :math:`\eta` = ``lr``, :math:`\alpha` =
    ``alpha``, :math:`\epsilon` = ``eps``, :math:`\mu` = ``momentum``, :math:`\lambda` =
    ``weight_decay``, :math:`\lambda_1` = ``l1``.

    The lesson's RMSProp is :math:`\alpha = \beta = 0.9`, :math:`\epsilon = 0`; Keras
    defaults to rho 0.9 and puts :math:`\epsilon` (1e-7) inside the square root.

    Raises:
        ValueError: negative ``lr``, ``eps``, ``momentum``, ``weight_decay`` or ``l1``;
            ``alpha`` outside [0, 1]; empty ``params``.
        TypeError: a parameter that is not a float32/float64 numpy array.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, maximize=False, l1=0):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=bool(centered),
                                      maximize=bool(maximize), l1=l1))

    @staticmethod
    def _check_hyperparameters(hp):
        _core.check_unit_interval(hp["alpha"], "alpha", True)
        _core.check_nonnegative(hp["eps"], "eps")
        _core.check_nonnegative(hp["momentum"], "momentum")

    @staticmethod
    def _state_names(hp):
        return (["square_avg"] + (["momentum_buffer"] if hp["momentum"] > 0 else [])
                + (["grad_avg"] if hp["centered"] else []))

    @staticmethod
    def _apply(ops, hp, params, grads, states, lr):
        every = range(len(states))
        ops.rmsprop_step(
            params, grads, _gather(states, every, "square_avg"),
            lr=lr, alpha=hp["alpha"], eps=hp["eps"], weight_decay=hp["weight_decay"],
            l1=hp["l1"], maximize=hp["maximize"], momentum=hp["momentum"],
            momentum_buffers=(_gather(states, every, "momentum_buffer")
                              if hp["momentum"] > 0 else None),
            centered=hp["centered"],
            grad_avgs=_gather(states, every, "grad_avg") if hp["centered"] else None)


class Adam(_Optimizer):
    r"""Adam, AMSGrad and (with ``decoupled_weight_decay``) AdamW (``torch.optim.Adam``).

    .. math::

        p_{t-1} &\leftarrow p_{t-1} (1 - \eta \lambda)
            \quad \text{(decoupled only; then } g'_t \text{ has no } \lambda p \text{ term)} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g'_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g'^2_t \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \ \text{(amsgrad)}, \qquad
            \hat v_t = v_t \ \text{(otherwise)} \\
        p_t &= p_{t-1} - \frac{\eta}{1 - \beta_1^t}
               \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    with :math:`m_0 = v_0 = \hat v_0 = 0` and :math:`t` the parameter's own step count.
    Symbols: :math:`\eta` = ``lr``, :math:`(\beta_1, \beta_2)` = ``betas``, :math:`\epsilon`
    = ``eps``, :math:`\lambda` = ``weight_decay``, :math:`\lambda_1` = ``l1`` (always coupled,
    in :math:`g'_t`).

    The lesson's Adam has no :math:`\epsilon`. Keras adds its :math:`\hat\epsilon` (1e-7) to
    :math:`\sqrt{v_t}` before bias correction; optax takes the AMSGrad maximum of the
    bias-corrected :math:`v`, torch and nnfast of the raw :math:`v`.

    Raises:
        ValueError: negative ``lr``, ``eps``, ``weight_decay`` or ``l1``; a beta outside
            [0, 1); empty ``params``.
        TypeError: a parameter that is not a float32/float64 numpy array.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, maximize=False, decoupled_weight_decay=False, l1=0):
        betas = tuple(betas)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=bool(amsgrad), maximize=bool(maximize),
                                      decoupled_weight_decay=bool(decoupled_weight_decay),
                                      l1=l1))

    @staticmethod
    def _check_hyperparameters(hp):
        betas = hp["betas"]
        if not isinstance(betas, tuple) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        _core.check_unit_interval(betas[0], "betas[0]", False)
        _core.check_unit_interval(betas[1], "betas[1]", False)
        _core.check_nonnegative(hp["eps"], "eps")

    @staticmethod
    def _state_names(hp):
        return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if hp["amsgrad"] else [])

    @staticmethod
    def _apply(ops, hp, params, grads, states, lr):
        beta1, beta2 = hp["betas"]
        for step, group in _by_step(states).items():
            ops.adam_step(
                _pick(params, group), _pick(grads, group),
                _gather(states, group, "exp_avg"), _gather(states, group, "exp_avg_sq"),
                step=step, lr=lr, beta1=beta1, beta2=beta2, eps=hp["eps"],
                weight_decay=hp["weight_decay"], l1=hp["l1"],
                decoupled_weight_decay=hp["decoupled_weight_decay"], amsgrad=hp["amsgrad"],
                max_exp_avg_sqs=(_gather(states, group, "max_exp_avg_sq")
                                 if hp["amsgrad"] else None),
                maximize=hp["maximize"])


class AdamW(Adam):
    r"""AdamW (``torch.optim.AdamW``): :class:`Adam` with decoupled weight decay, default 1e-2.

    .. math::

        p_{t-1} \leftarrow p_{t-1} (1 - \eta \lambda)

    then the :class:`Adam` update, whose :math:`g'_t` has no :math:`\lambda p` term.
    The decay multiplies the parameter before the update (torch, optax); bitsandbytes
    decays after it.

    Raises:
        ValueError, TypeError: as :class:`Adam`.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False, l1=0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True,
                         l1=l1)
