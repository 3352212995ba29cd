r"""Functional optimizer steps: one fused C++ pass over every parameter of a call.

Arrays: ``params``, ``grads`` and every state argument are each one array or a list or tuple
of arrays, one per parameter: NumPy arrays or PyTorch CPU tensors (any host array with
DLPack, taken as it is, no copy) on the host, or GPU arrays of any library through the CUDA
array interface or DLPack (PyTorch CUDA tensors, CuPy arrays, ...; see :mod:`nnfast.cuda`),
all of one call on one device. A tensor that autograd tracks (``requires_grad``) is only
read: pass ``tensor.detach()`` to update it. Lists have equal lengths; the arrays of
one parameter have equal shapes. A step updates ``params`` and its state arrays in place and
returns None.

Dtypes, per role (the arrays of one role share one dtype; :data:`nnfast.bfloat16` is
``ml_dtypes.bfloat16``):

=================  =====================================================================
``params``         float64, float32, bfloat16 or float16 (P)
``grads``          P; or float32 when P is 16-bit; or bfloat16/float16 with a master
states             float32, bfloat16 or P (float64 params: float64 states only)
``master_params``  float32 masters of 16-bit params
``param_remainders``  int16 low halves of the float32 masters of bfloat16 params
=================  =====================================================================

A float64 call computes in float64; every other call computes in float32 with the scalars
rounded to float32, as PyTorch and TensorFlow do: 16-bit arrays are widened exactly on
load and each value written is rounded once, to nearest even (a NaN stays NaN; overflow
gives inf: float16's largest finite value is 65504).

Storage options, shared by every step (keyword only):
    step: :math:`t`, the count of updates including this one: an integer >= 1, or one per
        parameter (a sequence). The bias corrections of Adam, NAdam and RAdam, NAdam's
        momentum schedule, RAdam's rectification and Adagrad's learning-rate decay use it;
        with ``stochastic_rounding`` it keys the random bits.
    master_params: None, or a float32 master per 16-bit parameter: the step updates the
        masters (every :math:`p` below is the master) and writes ``params[i] =
        round_nearest(master)`` in the same pass.
    param_remainders: None, or an int16 array per bfloat16 parameter: (param, remainder)
        is the float32 master bit for bit (:func:`nnfast.split_master`); the step rebuilds
        it, updates it and splits it back. Exclusive with ``master_params``.
    stochastic_rounding: round the updated 16-bit params stochastically (up with
        probability equal to the discarded fraction, so the expected stored value is the
        float32 result) instead of to nearest. States are always rounded to nearest. The
        random bits are Philox4x32-10 keyed by (``seed``, the parameter's ``step``) and
        counted by (the parameter's index in the call, the element's index): the same for
        any thread count, SIMD level and device.
    seed: the integer in [0, 2**64) of ``stochastic_rounding``.

Gradient-scaling options, shared by every step (keyword only): what a mixed-precision
training loop folds into the update instead of separate passes over the gradients
(``torch.amp.GradScaler``'s unscaling, gradient clipping; :class:`nnfast.torch.GradScaler`).
    grad_scale: :math:`s \ge 0`: every gradient is multiplied by it, in the compute type,
        before anything else (:math:`g \leftarrow s\,g` below): an inverse loss scale times
        a clip coefficient (:func:`nnfast.clip_grad_norm_`'s). A real, or a 1-element
        float32 array on the params' device (a GPU call's kernel reads it there: no sync,
        and no check of its value, which a host array or a real gets).
    found_inf: None, or a 1-element float32 array on the params' device: when it holds a
        nonzero value the step writes nothing (GradScaler's flag of an inf or NaN
        gradient; read by the kernel on a GPU). The step counts are the caller's: do not
        advance them for a skipped step.
    store_scaled_grads: also write :math:`s\,g` (rounded to the grads' dtype) back into
        ``grads``, which must then be writable, as torch's fused optimizers leave the
        unscaled gradient there under GradScaler. Without it grads are only read.

Every update below uses the effective gradient :math:`g'` in place of the gradient :math:`g`:

.. math::

    g' = \sigma\,g + \lambda_2\,p + \lambda_1 \operatorname{sign}(p), \qquad
    \sigma = -1 \text{ if } \texttt{maximize} \text{ else } 1

where :math:`p` is the parameter, :math:`\lambda_2` = ``weight_decay`` (coupled L2: the
gradient of :math:`\frac{\lambda_2}{2} p^2`) and :math:`\lambda_1` = ``l1`` (the gradient of
:math:`\lambda_1 |p|`, with :math:`\operatorname{sign}(0) = 0`); a term is added only when
its coefficient is nonzero, so a zero coefficient never turns an infinite :math:`p` into NaN.
A NaN in a gradient reaches only its own element.

Every step raises, besides the errors it lists itself:
    TypeError: an array argument is neither an array nnfast accepts nor a list or tuple of
        them; a dtype outside the table above for its role, or arrays of one role with
        different dtypes; a hyperparameter is not a real number (bool excluded), a flag is
        not a bool, ``step`` or ``seed`` is not an integer; ``found_inf`` or an array
        ``grad_scale`` is not float32.
    ValueError: list lengths or shapes differ; an array that is written is not C-contiguous,
        is read-only, or shares memory with another array of the call; the arrays of one
        call are on different devices; a hyperparameter is not finite or out of its range,
        or (in a float32 call) is, or makes a derived scalar, too large for float32; a
        state list is given that the options do not use, or is missing where they use it;
        ``step < 1``, or a sequence of steps whose length is not the number of params;
        both ``master_params`` and ``param_remainders``; ``stochastic_rounding`` for
        params that are not 16-bit, or with a master; ``grad_scale`` negative (or not
        finite), ``found_inf`` or an array ``grad_scale`` of more than one element.
    RuntimeError: GPU arrays, where nnfast was built without CUDA.
The whole call is validated (in C++, once) before anything is written. The GIL is released
while the kernel runs, for calls of 16,384 elements or more (below that, releasing it would
cost more than the update).
"""

from __future__ import annotations

from typing import Sequence, Union

from ._backend import module_for
from ._types import Array, Arrays

#: A step count, or one per parameter.
Steps = Union[int, Sequence[int]]


def _shared(step: Steps, master_params: Arrays | None, param_remainders: Arrays | None,
            stochastic_rounding: bool, seed: int, grad_scale: float | Array,
            found_inf: Array | None, store_scaled_grads: bool) -> dict[str, object]:
    return dict(step=step, master_params=master_params, param_remainders=param_remainders,
                stochastic_rounding=stochastic_rounding, seed=seed, grad_scale=grad_scale,
                found_inf=found_inf, store_scaled_grads=store_scaled_grads)


def sgd_step(params: Arrays, grads: Arrays, *, lr: float, weight_decay: float = 0.0,
             l1: float = 0.0, maximize: bool = False, step: Steps = 1, master_params: Arrays | None = None,
             param_remainders: Arrays | None = None, stochastic_rounding: bool = False,
             seed: int = 0, grad_scale: float | Array = 1.0,
             found_inf: Array | None = None, store_scaled_grads: bool = False) -> None:
    r"""Stochastic gradient descent.

    .. math::

        p \leftarrow p - \eta\,g'

    Args:
        params: parameters :math:`p`, updated in place.
        grads: gradients :math:`g`.
        lr: learning rate :math:`\eta \ge 0`.
        weight_decay, l1, maximize: :math:`\lambda_2 \ge 0`, :math:`\lambda_1 \ge 0` and
            :math:`\sigma = -1` (ascent) in :math:`g'` (module docstring).
        step, master_params, param_remainders, stochastic_rounding, seed: the storage
            options (module docstring).
        grad_scale, found_inf, store_scaled_grads: the gradient-scaling options (module
            docstring).

    Returns:
        None; ``params`` holds the result.

    Raises:
        TypeError, ValueError, RuntimeError: as every step (module docstring); ValueError
            for a negative ``lr``, ``weight_decay`` or ``l1``.
    """
    module_for(params).sgd_step(params=params, grads=grads, lr=lr, weight_decay=weight_decay,
                                l1=l1, maximize=maximize,
                                **_shared(step, master_params, param_remainders, stochastic_rounding, seed,
                                          grad_scale, found_inf, store_scaled_grads))


def sgdm_step(params: Arrays, grads: Arrays, momentum_buffers: Arrays, *, lr: float,
              momentum: float = 0.9, dampening: float = 0.0, nesterov: bool = False,
              weight_decay: float = 0.0, l1: float = 0.0, maximize: bool = False,
              first_step: bool | Sequence[bool] = False, step: Steps = 1, master_params: Arrays | None = None,
             param_remainders: Arrays | None = None, stochastic_rounding: bool = False,
             seed: int = 0, grad_scale: float | Array = 1.0,
             found_inf: Array | None = None, store_scaled_grads: bool = False) -> None:
    r"""SGD with momentum (PyTorch's form).

    .. math::

        b &\leftarrow \mu\,b + (1 - \tau)\,g' \quad\text{(or } b \leftarrow g'
            \text{ on a first step)} \\
        p &\leftarrow p - \eta\,(g' + \mu\,b) \quad\text{(nesterov)} \qquad
        p \leftarrow p - \eta\,b \quad\text{(otherwise)}

    The lesson's exponential moving average :math:`m = \beta m + (1-\beta) g` is
    ``dampening=momentum=beta`` with buffers starting at zero. PyTorch's
    ``torch.optim.SGD`` instead sets :math:`b = g'` on a parameter's first step
    (``first_step=True`` for it; the buffer's old contents are not read);
    :class:`nnfast.optim.SGD` does the same. Keras keeps :math:`\eta` inside the
    buffer, which differs once :math:`\eta` changes.

    Args:
        params: parameters :math:`p`, updated in place.
        grads: gradients :math:`g`.
        momentum_buffers: buffers :math:`b`, updated in place.
        lr: learning rate :math:`\eta \ge 0`.
        momentum: :math:`\mu \ge 0`.
        dampening: :math:`\tau`, any real.
        nesterov: Nesterov momentum (needs :math:`\mu > 0`, :math:`\tau = 0`).
        weight_decay, l1, maximize: :math:`\lambda_2 \ge 0`, :math:`\lambda_1 \ge 0` and
            :math:`\sigma = -1` (ascent) in :math:`g'` (module docstring).
        first_step: PyTorch's first step, :math:`b \leftarrow g'`: a bool, or one per
            parameter.
        step, master_params, param_remainders, stochastic_rounding, seed: the storage
            options (module docstring).
        grad_scale, found_inf, store_scaled_grads: the gradient-scaling options (module
            docstring).

    Returns:
        None; ``params`` and ``momentum_buffers`` hold the result.

    Raises:
        TypeError, ValueError, RuntimeError: as every step (module docstring); ValueError
            for a negative ``lr``, ``momentum``, ``weight_decay`` or ``l1``, and for
            ``nesterov`` with :math:`\mu = 0` or :math:`\tau \ne 0`.
    """
    module_for(params).sgdm_step(params=params, grads=grads, momentum_buffers=momentum_buffers,
                                 lr=lr, momentum=momentum, dampening=dampening,
                                 nesterov=nesterov, weight_decay=weight_decay, l1=l1,
                                 maximize=maximize, first_step=first_step,
                                 **_shared(step, master_params, param_remainders, stochastic_rounding, seed,
                                          grad_scale, found_inf, store_scaled_grads))


def adagrad_step(params: Arrays, grads: Arrays, sums: Arrays, *, lr: float, eps: float = 1e-10,
                 weight_decay: float = 0.0, l1: float = 0.0, maximize: bool = False,
                 lr_decay: float = 0.0, step: Steps = 1, master_params: Arrays | None = None,
             param_remainders: Arrays | None = None, stochastic_rounding: bool = False,
             seed: int = 0, grad_scale: float | Array = 1.0,
             found_inf: Array | None = None, store_scaled_grads: bool = False) -> None:
    r"""Adagrad (Duchi et al., 2011; PyTorch's form).

    .. math::

        s \leftarrow s + g'^2, \qquad
        p \leftarrow p - \eta_t\,\frac{g'}{\sqrt{s} + \epsilon}, \qquad
        \eta_t = \frac{\eta}{1 + (t - 1)\gamma}

    The lesson's Adagrad is ``eps=0`` with sums starting at 0; Keras and optax
    start the sums at 0.1 and put :math:`\epsilon` inside the root. :math:`\gamma` is
    PyTorch's ``lr_decay`` (computed in double, per parameter's step :math:`t`).

    Args:
        params: parameters :math:`p`, updated in place.
        grads: gradients :math:`g`.
        sums: accumulated squared gradients :math:`s`, updated in place.
        lr: learning rate :math:`\eta \ge 0`.
        eps: :math:`\epsilon \ge 0`.
        weight_decay, l1, maximize: :math:`\lambda_2 \ge 0`, :math:`\lambda_1 \ge 0` and
            :math:`\sigma = -1` (ascent) in :math:`g'` (module docstring).
        lr_decay: :math:`\gamma \ge 0`.
        step, master_params, param_remainders, stochastic_rounding, seed: the storage
            options (module docstring).
        grad_scale, found_inf, store_scaled_grads: the gradient-scaling options (module
            docstring).

    Returns:
        None; ``params`` and ``sums`` hold the result.

    Raises:
        TypeError, ValueError, RuntimeError: as every step (module docstring); ValueError
            for a negative ``lr``, ``eps``, ``weight_decay``, ``l1`` or ``lr_decay``.
    """
    module_for(params).adagrad_step(params=params, grads=grads, sums=sums, lr=lr, eps=eps,
                                    weight_decay=weight_decay, l1=l1, maximize=maximize,
                                    lr_decay=lr_decay,
                                    **_shared(step, master_params, param_remainders, stochastic_rounding, seed,
                                          grad_scale, found_inf, store_scaled_grads))


def rmsprop_step(params: Arrays, grads: Arrays, square_avgs: Arrays, *, lr: float,
                 alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 l1: float = 0.0, maximize: bool = False, momentum: float = 0.0,
                 momentum_buffers: Arrays | None = None, centered: bool = False,
                 grad_avgs: Arrays | None = None, step: Steps = 1, master_params: Arrays | None = None,
             param_remainders: Arrays | None = None, stochastic_rounding: bool = False,
             seed: int = 0, grad_scale: float | Array = 1.0,
             found_inf: Array | None = None, store_scaled_grads: bool = False) -> None:
    r"""RMSprop (Hinton, 2012; PyTorch's form).

    .. math::

        q &\leftarrow \alpha\,q + (1-\alpha)\,g'^2 \\
        c &\leftarrow \alpha\,c + (1-\alpha)\,g', \quad
            a = \sqrt{q - c^2} + \epsilon \quad\text{(centered)}; \qquad
            a = \sqrt{q} + \epsilon \quad\text{(otherwise)} \\
        b &\leftarrow \mu\,b + g'/a, \quad p \leftarrow p - \eta\,b
            \quad\text{(momentum } \mu > 0\text{)}; \qquad
            p \leftarrow p - \eta\,g'/a \quad\text{(otherwise)}

    The lesson's RMSProp is ``alpha=beta, eps=0``; Keras uses :math:`\alpha` = 0.9
    with :math:`\epsilon` inside the root.

    Args:
        params: parameters :math:`p`, updated in place.
        grads: gradients :math:`g`.
        square_avgs: :math:`q`, updated in place.
        lr: learning rate :math:`\eta \ge 0`.
        alpha: smoothing constant :math:`\alpha \in [0, 1]`.
        eps: :math:`\epsilon \ge 0`.
        weight_decay, l1, maximize: :math:`\lambda_2 \ge 0`, :math:`\lambda_1 \ge 0` and
            :math:`\sigma = -1` (ascent) in :math:`g'` (module docstring).
        momentum: :math:`\mu \ge 0`.
        momentum_buffers: :math:`b`, updated in place; given exactly when :math:`\mu > 0`.
        centered: subtract the squared mean gradient :math:`c^2`.
        grad_avgs: :math:`c`, updated in place; given exactly when ``centered``.
        step, master_params, param_remainders, stochastic_rounding, seed: the storage
            options (module docstring).
        grad_scale, found_inf, store_scaled_grads: the gradient-scaling options (module
            docstring).

    Returns:
        None; ``params`` and the state arrays given hold the result.

    Raises:
        TypeError, ValueError, RuntimeError: as every step (module docstring); ValueError
            for a negative ``lr``, ``eps``, ``momentum``, ``weight_decay`` or ``l1``,
            ``alpha`` outside [0, 1], and ``momentum_buffers`` or ``grad_avgs`` missing
            where used or given where not.
    """
    module_for(params).rmsprop_step(params=params, grads=grads, square_avgs=square_avgs,
                                    grad_avgs=grad_avgs, momentum_buffers=momentum_buffers,
                                    lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                    l1=l1, maximize=maximize, momentum=momentum,
                                    centered=centered,
                                    **_shared(step, master_params, param_remainders, stochastic_rounding, seed,
                                          grad_scale, found_inf, store_scaled_grads))


def adam_step(params: Arrays, grads: Arrays, exp_avgs: Arrays, exp_avg_sqs: Arrays, *,
              step: Steps, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
              eps: float = 1e-8, weight_decay: float = 0.0, l1: float = 0.0,
              decoupled_weight_decay: bool = False, amsgrad: bool = False,
              max_exp_avg_sqs: Arrays | None = None, maximize: bool = False,
              master_params: Arrays | None = None, param_remainders: Arrays | None = None,
              stochastic_rounding: bool = False, seed: int = 0, grad_scale: float | Array = 1.0,
             found_inf: Array | None = None, store_scaled_grads: bool = False) -> None:
    r"""Adam (Kingma & Ba, 2015) as PyTorch computes it; AdamW with decoupled decay.

    .. math::

        p &\leftarrow p\,(1 - \eta\lambda) \quad\text{(decoupled only)} \\
        m &\leftarrow \beta_1 m + (1-\beta_1)\,g' \\
        v &\leftarrow \beta_2 v + (1-\beta_2)\,g'^2 \\
        \hat v &= \max(\hat v, v) \quad\text{(amsgrad, on the raw } v\text{)},
            \quad \hat v = v \quad\text{(otherwise)} \\
        p &\leftarrow p - \frac{\eta}{1-\beta_1^t}\,
            \frac{m}{\sqrt{\hat v}/\sqrt{1-\beta_2^t} + \epsilon}

    With ``decoupled_weight_decay`` the decay :math:`\lambda` = ``weight_decay``
    multiplies :math:`p` before the update (Loshchilov & Hutter, 2019) and is not
    part of :math:`g'` (which is taken from :math:`p` before the decay); otherwise
    :math:`\lambda` is the coupled :math:`\lambda_2` of :math:`g'`. Keras adds
    :math:`\epsilon` before bias correction (:math:`\hat\epsilon`, default 1e-7); optax
    takes the AMSGrad max of the corrected :math:`v`; the lesson has no :math:`\epsilon`.

    Args:
        params: parameters :math:`p`, updated in place.
        grads: gradients :math:`g`.
        exp_avgs: first moments :math:`m`, updated in place.
        exp_avg_sqs: second moments :math:`v`, updated in place.
        step: :math:`t \ge 1`, the count of updates including this one (or one per
            parameter).
        lr: learning rate :math:`\eta \ge 0`.
        beta1: :math:`\beta_1 \in [0, 1)`.
        beta2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`.
        weight_decay: :math:`\lambda \ge 0`: decoupled (above) with
            ``decoupled_weight_decay``, else the coupled L2 term :math:`\lambda p` of
            :math:`g'`.
        l1: :math:`\lambda_1 \ge 0`, the L1 term :math:`\lambda_1 \operatorname{sign}(p)` of
            :math:`g'` (always coupled).
        decoupled_weight_decay: AdamW's decay.
        amsgrad: use the running maximum :math:`\hat v`.
        max_exp_avg_sqs: :math:`\hat v`, updated in place; given exactly when ``amsgrad``.
        maximize: ascend: :math:`g'` starts from :math:`-g`.
        master_params, param_remainders, stochastic_rounding, seed: the storage options
            (module docstring).
        grad_scale, found_inf, store_scaled_grads: the gradient-scaling options (module
            docstring).

    Returns:
        None; ``params`` and the state arrays hold the result.

    Raises:
        TypeError, ValueError, RuntimeError: as every step (module docstring); ValueError
            for ``step < 1``, a negative ``lr``, ``eps``, ``weight_decay`` or ``l1``, a beta
            outside [0, 1), and ``max_exp_avg_sqs`` missing with ``amsgrad`` or given
            without it.
    """
    module_for(params).adam_step(params=params, grads=grads, exp_avgs=exp_avgs,
                                 exp_avg_sqs=exp_avg_sqs, max_exp_avg_sqs=max_exp_avg_sqs,
                                 lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                                 weight_decay=weight_decay, l1=l1,
                                 decoupled_weight_decay=decoupled_weight_decay,
                                 amsgrad=amsgrad, maximize=maximize,
                                 **_shared(step, master_params, param_remainders, stochastic_rounding, seed,
                                          grad_scale, found_inf, store_scaled_grads))


def adamw_step(params: Arrays, grads: Arrays, exp_avgs: Arrays, exp_avg_sqs: Arrays, *,
               step: Steps, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
               eps: float = 1e-8, weight_decay: float = 1e-2, l1: float = 0.0,
               amsgrad: bool = False, max_exp_avg_sqs: Arrays | None = None,
               maximize: bool = False, master_params: Arrays | None = None,
               param_remainders: Arrays | None = None, stochastic_rounding: bool = False,
               seed: int = 0, grad_scale: float | Array = 1.0,
             found_inf: Array | None = None, store_scaled_grads: bool = False) -> None:
    r"""AdamW: :func:`adam_step` with ``decoupled_weight_decay=True``.

    .. math::

        p \leftarrow p\,(1 - \eta\lambda), \text{ then the Adam update of } p

    with :math:`\lambda` = ``weight_decay``. Defaults as ``torch.optim.AdamW``
    (``weight_decay=1e-2``).

    Args:
        params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay,
            l1, amsgrad, max_exp_avg_sqs, maximize, master_params, param_remainders,
            stochastic_rounding, seed, grad_scale, found_inf, store_scaled_grads: as
            :func:`adam_step` (``weight_decay`` decoupled).

    Returns:
        None; ``params`` and the state arrays hold the result.

    Raises:
        TypeError, ValueError, RuntimeError: as :func:`adam_step`.
    """
    adam_step(params, grads, exp_avgs, exp_avg_sqs, step=step, lr=lr, beta1=beta1, beta2=beta2,
              eps=eps, weight_decay=weight_decay, l1=l1, decoupled_weight_decay=True,
              amsgrad=amsgrad, max_exp_avg_sqs=max_exp_avg_sqs, maximize=maximize,
              master_params=master_params, param_remainders=param_remainders,
              stochastic_rounding=stochastic_rounding, seed=seed, grad_scale=grad_scale,
              found_inf=found_inf, store_scaled_grads=store_scaled_grads)


def nadam_step(params: Arrays, grads: Arrays, exp_avgs: Arrays, exp_avg_sqs: Arrays, *,
               step: Steps, mu_product: float | Sequence[float], lr: float = 2e-3,
               beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
               weight_decay: float = 0.0, l1: float = 0.0, momentum_decay: float = 4e-3,
               decoupled_weight_decay: bool = False, maximize: bool = False,
               master_params: Arrays | None = None, param_remainders: Arrays | None = None,
               stochastic_rounding: bool = False, seed: int = 0, grad_scale: float | Array = 1.0,
               found_inf: Array | None = None, store_scaled_grads: bool = False) -> None:
    r"""NAdam (Dozat, 2016): Adam with Nesterov momentum, as PyTorch computes it.

    .. math::

        p &\leftarrow p\,(1 - \eta\lambda) \quad\text{(decoupled only)} \\
        \mu_t &= \beta_1\,(1 - \tfrac12\,0.96^{t\psi}), \qquad
            \mu_{t+1} = \beta_1\,(1 - \tfrac12\,0.96^{(t+1)\psi}), \qquad
            P_t = \textstyle\prod_{i=1}^{t} \mu_i \\
        m &\leftarrow \beta_1 m + (1-\beta_1)\,g' \\
        v &\leftarrow \beta_2 v + (1-\beta_2)\,g'^2, \qquad
            d = \sqrt{v / (1-\beta_2^t)} + \epsilon \\
        p &\leftarrow p - \frac{\eta\,(1-\mu_t)}{1 - P_t}\,\frac{g'}{d}, \quad\text{then}\quad
        p \leftarrow p - \frac{\eta\,\mu_{t+1}}{1 - P_t\,\mu_{t+1}}\,\frac{m}{d}

    The two updates of :math:`p` are rounded one after the other, as PyTorch's. :math:`P_t`
    is the caller's: the running product of the :math:`\mu_i` (this step's included),
    which PyTorch keeps per parameter as ``mu_product`` (in float32; :class:`nnfast.optim.NAdam`
    and :class:`nnfast.torch.NAdam` keep it the same way). With ``decoupled_weight_decay``
    the decay :math:`\lambda` multiplies :math:`p` first and is not part of :math:`g'` (taken
    from :math:`p` before it); otherwise :math:`\lambda` is the coupled :math:`\lambda_2`.

    Args:
        mu_product: :math:`P_t \in [0, 1)`, including this step's :math:`\mu_t` (or one per
            parameter).
        momentum_decay: :math:`\psi \ge 0`.
        params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay, l1,
            decoupled_weight_decay, maximize, master_params, param_remainders,
            stochastic_rounding, seed, grad_scale, found_inf, store_scaled_grads: as
            :func:`adam_step` (:math:`m`, :math:`v`, :math:`t`, :math:`\eta`,
            :math:`\beta_1`, :math:`\beta_2`, :math:`\epsilon`, :math:`\lambda` above).

    Returns:
        None; ``params`` and the state arrays hold the result.

    Raises:
        TypeError, ValueError, RuntimeError: as every step (module docstring); TypeError for
            a ``mu_product`` that is not a real number; ValueError for ``step < 1``, a
            ``mu_product`` outside [0, 1) or a sequence of them whose length is not the
            number of params, a negative ``lr``, ``eps``, ``weight_decay``, ``l1`` or
            ``momentum_decay``, and a beta outside [0, 1).
    """
    module_for(params).nadam_step(params=params, grads=grads, exp_avgs=exp_avgs,
                                  exp_avg_sqs=exp_avg_sqs, mu_product=mu_product, lr=lr,
                                  beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                                  l1=l1, momentum_decay=momentum_decay,
                                  decoupled_weight_decay=decoupled_weight_decay,
                                  maximize=maximize,
                                  **_shared(step, master_params, param_remainders, stochastic_rounding, seed,
                                            grad_scale, found_inf, store_scaled_grads))


def radam_step(params: Arrays, grads: Arrays, exp_avgs: Arrays, exp_avg_sqs: Arrays, *,
               step: Steps, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
               eps: float = 1e-8, weight_decay: float = 0.0, l1: float = 0.0,
               decoupled_weight_decay: bool = False, maximize: bool = False,
               master_params: Arrays | None = None, param_remainders: Arrays | None = None,
               stochastic_rounding: bool = False, seed: int = 0, grad_scale: float | Array = 1.0,
               found_inf: Array | None = None, store_scaled_grads: bool = False) -> None:
    r"""RAdam (Liu et al., 2020): Adam with its variance rectified, as PyTorch computes it.

    .. math::

        p &\leftarrow p\,(1 - \eta\lambda) \quad\text{(decoupled only)} \\
        m &\leftarrow \beta_1 m + (1-\beta_1)\,g', \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\,g'^2 \\
        \rho_\infty &= \frac{2}{1-\beta_2} - 1, \qquad
            \rho_t = \rho_\infty - \frac{2\,t\,\beta_2^t}{1-\beta_2^t} \\
        p &\leftarrow p - \frac{\eta\,r_t\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
            \frac{m}{\sqrt{v} + \epsilon}, \quad
            r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\,\rho_\infty}
            {(\rho_\infty-4)(\rho_\infty-2)\,\rho_t}} \quad\text{if } \rho_t > 5 \\
        p &\leftarrow p - \frac{\eta}{1-\beta_1^t}\,m \quad\text{otherwise}

    The branch is taken per parameter, from its own :math:`t` (with the default
    :math:`\beta_2` = 0.999, steps 1 to 5 take the second form). With
    ``decoupled_weight_decay`` the decay :math:`\lambda` multiplies :math:`p` first and is
    not part of :math:`g'` (taken from :math:`p` before it); otherwise :math:`\lambda` is the
    coupled :math:`\lambda_2`.

    Args:
        params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay, l1,
            decoupled_weight_decay, maximize, master_params, param_remainders,
            stochastic_rounding, seed, grad_scale, found_inf, store_scaled_grads: as
            :func:`adam_step` (:math:`m`, :math:`v`, :math:`t`, :math:`\eta`,
            :math:`\beta_1`, :math:`\beta_2`, :math:`\epsilon`, :math:`\lambda` above).

    Returns:
        None; ``params`` and the state arrays hold the result.

    Raises:
        TypeError, ValueError, RuntimeError: as every step (module docstring); ValueError
            for ``step < 1``, a negative ``lr``, ``eps``, ``weight_decay`` or ``l1``, and a
            beta outside [0, 1).
    """
    module_for(params).radam_step(params=params, grads=grads, exp_avgs=exp_avgs,
                                  exp_avg_sqs=exp_avg_sqs, lr=lr, beta1=beta1, beta2=beta2,
                                  eps=eps, weight_decay=weight_decay, l1=l1,
                                  decoupled_weight_decay=decoupled_weight_decay,
                                  maximize=maximize,
                                  **_shared(step, master_params, param_remainders, stochastic_rounding, seed,
                                            grad_scale, found_inf, store_scaled_grads))


def lamb_step(params: Arrays, grads: Arrays, exp_avgs: Arrays, exp_avg_sqs: Arrays, *,
              step: Steps, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
              eps: float = 1e-6, weight_decay: float = 0.01, bias_correction: bool = True,
              adam_w_mode: bool = True, grad_averaging: bool = True, max_grad_norm: float = 1.0,
              use_nvlamb: bool = False, maximize: bool = False,
              master_params: Arrays | None = None, param_remainders: Arrays | None = None,
              stochastic_rounding: bool = False, seed: int = 0, grad_scale: float | Array = 1.0,
              found_inf: Array | None = None, store_scaled_grads: bool = False) -> None:
    r"""LAMB (You et al., 2020) as apex's ``FusedLAMB`` computes it.

    .. math::

        G &= \lVert s\,g \rVert_2 \text{ over every gradient of the call}, \quad
            c = \frac{\mu}{\max(G, \mu)} \ (\mu > 0), \quad c = 1 \ (\mu = 0) \\
        g' &= \sigma\,c\,s\,g + \lambda p \quad\text{(}\lambda p\text{ only without
            adam\_w\_mode)} \\
        m &\leftarrow \beta_1 m + \beta_3 g', \quad
            \beta_3 = 1 - \beta_1 \text{ (grad\_averaging) or } 1 \\
        v &\leftarrow \beta_2 v + (1-\beta_2)\,g'^2 \\
        u &= \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}
            + \lambda p \quad\text{(}\lambda p\text{ only with adam\_w\_mode; no
            corrections without bias\_correction)} \\
        r &= \lVert p \rVert_2 / \lVert u \rVert_2 \text{ per parameter} \\
        p &\leftarrow p - \eta\,r\,u

    :math:`r = 1` when :math:`\lambda = 0` and not ``use_nvlamb``, or when either norm
    is 0 (a NaN norm gives a NaN :math:`r`, as apex). A call is three passes: the global
    norm :math:`G` (one read of the gradients; none when :math:`\mu = 0`), the norms of
    :math:`p` and :math:`u` per parameter (one read of :math:`p, g, m, v`, nothing
    written; sums in float64, each parameter's in a fixed order, so the result does not
    depend on the thread count), then the update (:math:`u` recomputed with the same
    bits; one read of :math:`g`, :math:`p, m, v` read and written): 12 accesses per element,
    48 bytes per float32 parameter. :math:`G` covers the call's gradients only:
    :class:`nnfast.torch.LAMB` takes it over every group.

    Args:
        params: parameters :math:`p`, updated in place.
        grads: gradients :math:`g`.
        exp_avgs: first moments :math:`m`, updated in place.
        exp_avg_sqs: second moments :math:`v`, updated in place.
        step: :math:`t \ge 1` (or one per parameter).
        lr: learning rate :math:`\eta \ge 0`.
        beta1: :math:`\beta_1 \in [0, 1)`.
        beta2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`.
        weight_decay: :math:`\lambda \ge 0`: added to :math:`u` with ``adam_w_mode``,
            else to :math:`g'` (L2).
        bias_correction: divide :math:`m, v` by :math:`1 - \beta^t`.
        adam_w_mode: decoupled decay (on :math:`u`) instead of L2 (on :math:`g'`).
        grad_averaging: :math:`\beta_3 = 1 - \beta_1`, else 1.
        max_grad_norm: :math:`\mu \ge 0`; 0 turns the clipping (and its pass) off.
        use_nvlamb: apply the trust ratio also when :math:`\lambda = 0`.
        maximize: ascend: :math:`\sigma = -1`.
        master_params, param_remainders, stochastic_rounding, seed: the storage options
            (module docstring).
        grad_scale, found_inf, store_scaled_grads: the gradient-scaling options (module
            docstring): :math:`s` multiplies the gradients before :math:`G` is taken; a
            nonzero ``found_inf`` skips all three passes; the gradients stored back are
            :math:`c\,s\,g`. On a GPU, ``found_inf`` and an array ``grad_scale`` are read
            by the host (a sync), as the trust ratios are derived there.

    Returns:
        None; ``params`` and the state arrays hold the result.

    Raises:
        TypeError, ValueError, RuntimeError: as every step (module docstring); ValueError
            for ``step < 1``, a negative ``lr``, ``eps``, ``weight_decay`` or
            ``max_grad_norm``, or a beta outside [0, 1).
    """
    module_for(params).lamb_step(params=params, grads=grads, exp_avgs=exp_avgs,
                                 exp_avg_sqs=exp_avg_sqs, lr=lr, beta1=beta1, beta2=beta2,
                                 eps=eps, weight_decay=weight_decay,
                                 bias_correction=bias_correction, adam_w_mode=adam_w_mode,
                                 grad_averaging=grad_averaging, max_grad_norm=max_grad_norm,
                                 use_nvlamb=use_nvlamb, maximize=maximize,
                                 **_shared(step, master_params, param_remainders, stochastic_rounding, seed,
                                          grad_scale, found_inf, store_scaled_grads))


def lion_step(params: Arrays, grads: Arrays, exp_avgs: Arrays, *, lr: float,
              beta1: float = 0.9, beta2: float = 0.99, weight_decay: float = 0.0,
              l1: float = 0.0, maximize: bool = False, step: Steps = 1,
              master_params: Arrays | None = None, param_remainders: Arrays | None = None,
              stochastic_rounding: bool = False, seed: int = 0, grad_scale: float | Array = 1.0,
              found_inf: Array | None = None, store_scaled_grads: bool = False) -> None:
    r"""Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"), as
    lion-pytorch computes it.

    .. math::

        p &\leftarrow p\,(1 - \eta\lambda) \\
        c &= \beta_1 m + (1-\beta_1)\,g' \\
        p &\leftarrow p - \eta \operatorname{sign}(c) \\
        m &\leftarrow \beta_2 m + (1-\beta_2)\,g'

    with :math:`\operatorname{sign}(0) = 0` and :math:`\operatorname{sign}(\text{NaN}) =
    \text{NaN}` (``torch.sign``). Every element moves by exactly :math:`\eta` (before the
    decay); :math:`g'` is taken from :math:`p` before the decay. optax's ``lion`` is the
    same update (its ``b1, b2``); the decay is decoupled, as in the paper.

    Args:
        params: parameters :math:`p`, updated in place.
        grads: gradients :math:`g`.
        exp_avgs: momentum :math:`m`, updated in place.
        lr: learning rate :math:`\eta \ge 0`.
        beta1: :math:`\beta_1 \in [0, 1]`, the interpolation whose sign is the update.
        beta2: :math:`\beta_2 \in [0, 1]`, the momentum's decay.
        weight_decay: decoupled decay :math:`\lambda \ge 0`.
        l1, maximize: :math:`\lambda_1 \ge 0` and :math:`\sigma = -1` (ascent) in
            :math:`g'` (module docstring).
        step: the count of updates including this one (or one per parameter); the update
            does not depend on it: it keys ``stochastic_rounding``'s random bits.
        master_params, param_remainders, stochastic_rounding, seed: the storage options
            (module docstring).
        grad_scale, found_inf, store_scaled_grads: the gradient-scaling options (module
            docstring).

    Returns:
        None; ``params`` and ``exp_avgs`` hold the result.

    Raises:
        TypeError, ValueError, RuntimeError: as every step (module docstring); ValueError
            for a negative ``lr``, ``weight_decay`` or ``l1``, and a beta outside [0, 1].
    """
    module_for(params).lion_step(params=params, grads=grads, exp_avgs=exp_avgs, lr=lr,
                                 beta1=beta1, beta2=beta2, weight_decay=weight_decay, l1=l1,
                                 maximize=maximize,
                                 **_shared(step, master_params, param_remainders, stochastic_rounding, seed,
                                          grad_scale, found_inf, store_scaled_grads))


def adamax_step(params: Arrays, grads: Arrays, exp_avgs: Arrays, exp_infs: Arrays, *,
                step: Steps, lr: float = 2e-3, beta1: float = 0.9, beta2: float = 0.999,
                eps: float = 1e-8, weight_decay: float = 0.0, l1: float = 0.0,
                maximize: bool = False, master_params: Arrays | None = None,
                param_remainders: Arrays | None = None, stochastic_rounding: bool = False,
                seed: int = 0, grad_scale: float | Array = 1.0,
                found_inf: Array | None = None, store_scaled_grads: bool = False) -> None:
    r"""Adamax (Kingma & Ba, 2015, section 7.1) as ``torch.optim.Adamax`` computes it.

    .. math::

        m &\leftarrow \beta_1 m + (1-\beta_1)\,g' \\
        u &\leftarrow \max(\beta_2 u,\ |g'| + \epsilon) \\
        p &\leftarrow p - \frac{(\eta / (1-\beta_1^t))\, m}{u}

    The exponentially weighted infinity norm :math:`u` takes Adam's :math:`\sqrt{v}`; a
    NaN in either argument of the max gives NaN (``torch.maximum``). Keras puts
    :math:`\epsilon` outside the max (:math:`m / (u + \epsilon)`); the paper has no
    :math:`\epsilon`.

    Args:
        params: parameters :math:`p`, updated in place.
        grads: gradients :math:`g`.
        exp_avgs: first moments :math:`m`, updated in place.
        exp_infs: infinity norms :math:`u`, updated in place.
        step: :math:`t \ge 1`, the count of updates including this one (or one per
            parameter).
        lr: learning rate :math:`\eta \ge 0`.
        beta1: :math:`\beta_1 \in [0, 1)`.
        beta2: :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`.
        weight_decay, l1, maximize: :math:`\lambda_2 \ge 0`, :math:`\lambda_1 \ge 0` and
            :math:`\sigma = -1` (ascent) in :math:`g'` (module docstring).
        master_params, param_remainders, stochastic_rounding, seed: the storage options
            (module docstring).
        grad_scale, found_inf, store_scaled_grads: the gradient-scaling options (module
            docstring).

    Returns:
        None; ``params`` and the state arrays hold the result.

    Raises:
        TypeError, ValueError, RuntimeError: as every step (module docstring); ValueError
            for ``step < 1``, a negative ``lr``, ``eps``, ``weight_decay`` or ``l1``, and a
            beta outside [0, 1).
    """
    module_for(params).adamax_step(params=params, grads=grads, exp_avgs=exp_avgs,
                                   exp_infs=exp_infs, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                                   weight_decay=weight_decay, l1=l1, maximize=maximize,
                                   **_shared(step, master_params, param_remainders, stochastic_rounding, seed,
                                            grad_scale, found_inf, store_scaled_grads))


def adadelta_step(params: Arrays, grads: Arrays, square_avgs: Arrays, acc_deltas: Arrays, *,
                  lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                  weight_decay: float = 0.0, l1: float = 0.0, maximize: bool = False,
                  step: Steps = 1, master_params: Arrays | None = None,
                  param_remainders: Arrays | None = None, stochastic_rounding: bool = False,
                  seed: int = 0, grad_scale: float | Array = 1.0,
                  found_inf: Array | None = None, store_scaled_grads: bool = False) -> None:
    r"""Adadelta (Zeiler, 2012) as ``torch.optim.Adadelta`` computes it.

    .. math::

        v &\leftarrow \rho\,v + (1-\rho)\,g'^2 \\
        \Delta &= \frac{\sqrt{u + \epsilon}}{\sqrt{v + \epsilon}}\,g' \\
        u &\leftarrow \rho\,u + (1-\rho)\,\Delta^2 \\
        p &\leftarrow p - \eta\,\Delta

    in torch's order of roundings (:math:`((1-\rho) g') g'`, the ratio of the roots before
    the product with :math:`g'`). The paper has no learning rate (:math:`\eta = 1`, torch's
    default); Keras's default ``rho`` is 0.95 and ``epsilon`` 1e-7.

    Args:
        params: parameters :math:`p`, updated in place.
        grads: gradients :math:`g`.
        square_avgs: running mean :math:`v` of :math:`g'^2`, updated in place.
        acc_deltas: running mean :math:`u` of :math:`\Delta^2`, updated in place.
        lr: learning rate :math:`\eta \ge 0`.
        rho: :math:`\rho \in [0, 1]`.
        eps: :math:`\epsilon \ge 0`.
        weight_decay, l1, maximize: :math:`\lambda_2 \ge 0`, :math:`\lambda_1 \ge 0` and
            :math:`\sigma = -1` (ascent) in :math:`g'` (module docstring).
        step: the count of updates including this one (or one per parameter); the update
            does not depend on it: it keys ``stochastic_rounding``'s random bits.
        master_params, param_remainders, stochastic_rounding, seed: the storage options
            (module docstring).
        grad_scale, found_inf, store_scaled_grads: the gradient-scaling options (module
            docstring).

    Returns:
        None; ``params`` and the state arrays hold the result.

    Raises:
        TypeError, ValueError, RuntimeError: as every step (module docstring); ValueError
            for a negative ``lr``, ``eps``, ``weight_decay`` or ``l1``, and ``rho`` outside
            [0, 1].
    """
    module_for(params).adadelta_step(params=params, grads=grads, square_avgs=square_avgs,
                                     acc_deltas=acc_deltas, lr=lr, rho=rho, eps=eps,
                                     weight_decay=weight_decay, l1=l1, maximize=maximize,
                                     **_shared(step, master_params, param_remainders, stochastic_rounding, seed,
                                              grad_scale, found_inf, store_scaled_grads))


def adafactor_step(params: Arrays, grads: Arrays, row_vars: Sequence[Array | None],
                   col_vars: Sequence[Array | None], variances: Sequence[Array | None], *,
                   step: Steps, lr: float = 1e-2, beta2_decay: float = -0.8,
                   eps1: float | None = None, eps2: float = 1e-3, d: float = 1.0,
                   weight_decay: float = 0.0, maximize: bool = False,
                   master_params: Arrays | None = None, param_remainders: Arrays | None = None,
                   stochastic_rounding: bool = False, seed: int = 0,
                   grad_scale: float | Array = 1.0, found_inf: Array | None = None,
                   store_scaled_grads: bool = False) -> None:
    r"""Adafactor (Shazeer & Stern, 2018) as ``torch.optim.Adafactor`` computes it.

    For each parameter :math:`p` of :math:`N` elements, with
    :math:`g' = \sigma\,s\,g` (:math:`\sigma = -1` with ``maximize``, :math:`s` =
    ``grad_scale``), :math:`\operatorname{RMS}(x) = \|x\|_2/\sqrt{N}` and
    :math:`\operatorname{lerp}(a, b, w) = a + w\,(b - a)`:

    .. math::

        w_t &= t^{\hat\beta}, \qquad \rho_t = \min(\eta, 1/\sqrt{t}), \qquad
            \alpha_t = \max(\epsilon_2, \operatorname{RMS}(p))\,\rho_t \\
        p &\leftarrow p\,(1 - \eta\lambda) \\
        R &\leftarrow \operatorname{lerp}(R, \operatorname{mean}_{-1} g'^2, w_t), \quad
        C \leftarrow \operatorname{lerp}(C, \operatorname{mean}_{-2} g'^2, w_t), \quad
        \hat v = \frac{R\,C}{\max(\operatorname{mean}_{-2} R, \epsilon_1)}
            \quad\text{(2 dims or more)} \\
        v &\leftarrow \operatorname{lerp}(v, g'^2, w_t), \quad \hat v = v
            \quad\text{(0 or 1 dims)} \\
        u &= \frac{g'}{\sqrt{\max(\hat v, \epsilon_1^2)}}, \qquad
        p \leftarrow p - \frac{\alpha_t}{\max(1, \operatorname{RMS}(u)/d)}\,u

    :math:`\alpha_t` is taken from :math:`p` before the decay. :math:`R` (shape of
    :math:`p` with the last dim 1) and :math:`C` (the second-to-last dim 1) factor the
    second moment over the last two dims, every leading dim a batch of its own;
    :math:`R\,C` is their outer product. Each mean and RMS is summed in float64 in an
    order fixed by the shape (the same bits for any thread count) and rounded once to the
    compute type; :math:`\operatorname{lerp}` is torch's (from the end nearer to
    :math:`w_t`). A parameter with no element is left as it is. 16-bit arrays are
    computed in float32 and each result is rounded once on its store, as in every step
    (module docstring): the step's bits are those of float32 arrays holding the same
    values, :math:`R` and :math:`C` float32 from their update to the end of the step.
    Host or GPU arrays, on a GPU with every dtype and storage option of the CPU and each
    element's arithmetic and roundings the CPU's (stochastic rounding with its bits); on
    a GPU the sums are added in another fixed order (so the same bits on every run, but
    the moments and the step size may differ from the CPU's in their last bits), nothing
    waits for the device, and ``found_inf`` and an array ``grad_scale`` are read by the
    kernels.

    Args:
        params: parameters :math:`p`, updated in place (float64, float32, bfloat16 or
            float16).
        grads: gradients :math:`g`: the params' dtype, float32 beside 16-bit params, or
            16-bit beside a float32 master (the roles of the module docstring).
        row_vars: one entry per parameter: :math:`R`, updated in place, for a parameter
            of 2 or more dims, else None.
        col_vars: one entry per parameter: :math:`C`, updated in place, for a parameter
            of 2 or more dims, else None.
        variances: one entry per parameter: :math:`v` (the parameter's shape), updated
            in place, for a parameter of 0 or 1 dims, else None. Every state has one
            dtype: float32, bfloat16 or the params' (float64 with float64 params).
        step: :math:`t \ge 1`, the count of updates including this one (or one per
            parameter).
        lr: :math:`\eta \ge 0`.
        beta2_decay: :math:`\hat\beta \le 0`.
        eps1: :math:`\epsilon_1 \ge 0`, or None for the machine epsilon of the params'
            dtype (torch's default).
        eps2: :math:`\epsilon_2 \ge 0`.
        d: the clipping threshold :math:`d \ge 1`.
        weight_decay: :math:`\lambda \ge 0`, decoupled (above).
        maximize: ascend: :math:`\sigma = -1`.
        master_params, param_remainders, stochastic_rounding, seed: the storage options
            (module docstring).
        grad_scale, found_inf, store_scaled_grads: the gradient-scaling options (module
            docstring).

    Returns:
        None; ``params`` and the state arrays hold the result.

    Raises:
        TypeError: as every step (module docstring), the states' dtypes included; a
            state list that is not a list or tuple.
        ValueError: as every step; a state entry missing (None) where the parameter's
            dims use it, or given where they do not, or of a shape other than the one
            above; ``lr``, ``eps1``, ``eps2`` or ``weight_decay`` negative,
            ``beta2_decay > 0``, ``d < 1``.
    """
    module_for(params).adafactor_step(
        params=params, grads=grads, row_vars=row_vars, col_vars=col_vars, variances=variances,
        lr=lr, beta2_decay=beta2_decay, eps1=eps1, eps2=eps2, d=d, weight_decay=weight_decay,
        maximize=maximize, **_shared(step, master_params, param_remainders, stochastic_rounding,
                                     seed, grad_scale, found_inf, store_scaled_grads))
