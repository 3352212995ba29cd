r"""Functional optimizer steps: one fused C++ pass over every parameter of a call.

Each step takes one array or a list/tuple of arrays for ``params``, ``grads`` and
every state argument (lists of equal length, arrays pairwise of equal shape and
one dtype, float32 or float64), updates params and states in place, and returns
None. Float32 arrays are updated in float32 arithmetic with the scalars rounded
to float32, as PyTorch and TensorFlow do.

In every formula :math:`g'` is the effective gradient:

.. math::

    g' = \pm g + \lambda_2\,p + \lambda_1 \operatorname{sign}(p)

with the sign negative when ``maximize``, :math:`\lambda_2` = ``weight_decay``
(coupled L2) and :math:`\lambda_1` = ``l1``; a term is added only when its
coefficient is nonzero. A NaN in a gradient reaches only its own element.

All steps raise:
    TypeError: an argument is not an ndarray (or a list of them), or an array's
        dtype is not float32/float64, or the dtypes of one call differ.
    ValueError: list lengths or shapes differ; an array that is written is not
        C-contiguous or is read-only; a hyperparameter is out of range.
The whole call is validated (in C++, once) before anything is written. The GIL
is released while the kernel runs, for calls of 16,384 elements or more (below
that, releasing it would cost more than the update).
"""

from __future__ import annotations

from ._backend import module_for


def sgd_step(params, grads, *, lr, weight_decay=0.0, l1=0.0, maximize=False):
    r"""Stochastic gradient descent, :math:`p \leftarrow p - \eta\,g'`.

    Args:
        params: parameters :math:`p`, updated in place.
        grads: gradients :math:`g`.
        lr: learning rate :math:`\eta \ge 0`.
        weight_decay: coupled L2 coefficient :math:`\lambda_2 \ge 0`.
        l1: L1 coefficient :math:`\lambda_1 \ge 0`.
        maximize: ascend instead of descend.
    """
    module_for(params).sgd_step(params, grads, lr, weight_decay, l1, maximize)


def _sgdm(params, grads, momentum_buffers, lr, momentum, dampening, nesterov,
          weight_decay, l1, maximize, first_step):
    module_for(params).sgdm_step(params, grads, momentum_buffers, lr, momentum, dampening, nesterov,
                    weight_decay, l1, maximize, first_step)


def sgdm_step(params, grads, momentum_buffers, *, lr, momentum=0.9, dampening=0.0,
              nesterov=False, weight_decay=0.0, l1=0.0, maximize=False):
    r"""SGD with momentum (PyTorch's form).

    .. math::

        b &\leftarrow \mu\,b + (1 - \tau)\,g' \\
        p &\leftarrow p - \eta\,(g' + \mu\,b) \quad\text{(nesterov)} \qquad
        p \leftarrow p - \eta\,b \quad\text{(otherwise)}

    The lesson's exponential moving average :math:`m = \beta m + (1-\beta) g` is
    ``dampening=momentum=beta`` with buffers starting at zero. PyTorch's
    ``torch.optim.SGD`` instead sets :math:`b = g'` on its first step;
    :class:`nnfast.optim.SGD` does the same. Keras keeps :math:`\eta` inside the
    buffer, which differs once :math:`\eta` changes.

    Args:
        params: parameters :math:`p`, updated in place.
        grads: gradients :math:`g`.
        momentum_buffers: buffers :math:`b`, updated in place.
        lr: learning rate :math:`\eta \ge 0`.
        momentum: :math:`\mu \ge 0`.
        dampening: :math:`\tau`.
        nesterov: Nesterov momentum (needs :math:`\mu > 0`, :math:`\tau = 0`).
        weight_decay, l1, maximize: see the module docstring.
    """
    _sgdm(params, grads, momentum_buffers, lr, momentum, dampening, nesterov,
          weight_decay, l1, maximize, False)


def _sgdm_first_step(params, grads, momentum_buffers, *, lr, momentum, nesterov,
                     weight_decay, l1, maximize):
    """PyTorch's first SGD-momentum step: b = g', then the update of sgdm_step."""
    _sgdm(params, grads, momentum_buffers, lr, momentum, 0.0, nesterov,
          weight_decay, l1, maximize, True)


def adagrad_step(params, grads, sums, *, lr, eps=1e-10, weight_decay=0.0, l1=0.0,
                 maximize=False):
    r"""Adagrad (Duchi et al., 2011; PyTorch's form).

    .. math::

        s \leftarrow s + g'^2, \qquad
        p \leftarrow p - \eta\,\frac{g'}{\sqrt{s} + \epsilon}

    The lesson's Adagrad is ``eps=0`` with sums starting at 0; Keras and optax
    start the sums at 0.1 and put :math:`\epsilon` inside the root. PyTorch's
    ``lr_decay`` is applied by :class:`nnfast.optim.Adagrad` through ``lr``.

    Args:
        params: parameters :math:`p`, updated in place.
        grads: gradients :math:`g`.
        sums: accumulated squared gradients :math:`s`, updated in place.
        lr: learning rate :math:`\eta \ge 0`.
        eps: :math:`\epsilon \ge 0`.
        weight_decay, l1, maximize: see the module docstring.
    """
    module_for(params).adagrad_step(params, grads, sums, lr, eps, weight_decay, l1, maximize)


def rmsprop_step(params, grads, square_avgs, *, lr, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 l1=0.0, maximize=False, momentum=0.0, momentum_buffers=None, centered=False,
                 grad_avgs=None):
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
        momentum: :math:`\mu \ge 0`; when > 0, ``momentum_buffers`` (:math:`b`) is required.
        centered: subtract the squared mean gradient; requires ``grad_avgs`` (:math:`c`).
        weight_decay, l1, maximize: see the module docstring.
    """
    module_for(params).rmsprop_step(params, grads, square_avgs, lr, alpha, eps, weight_decay, l1, maximize,
                       momentum, momentum_buffers, centered, grad_avgs)


def adam_step(params, grads, exp_avgs, exp_avg_sqs, *, step, lr=1e-3, beta1=0.9, beta2=0.999,
              eps=1e-8, weight_decay=0.0, l1=0.0, decoupled_weight_decay=False, amsgrad=False,
              max_exp_avg_sqs=None, maximize=False):
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
    part of :math:`g'`. Keras adds :math:`\epsilon` before bias correction
    (:math:`\hat\epsilon`, default 1e-7); optax takes the AMSGrad max of the
    corrected :math:`v`; the lesson has no :math:`\epsilon`.

    Args:
        params: parameters :math:`p`, updated in place.
        grads: gradients :math:`g`.
        exp_avgs: first moments :math:`m`, updated in place.
        exp_avg_sqs: second moments :math:`v`, updated in place.
        step: :math:`t`, the 1-based count of updates including this one.
        lr: learning rate :math:`\eta \ge 0`.
        beta1, beta2: :math:`\beta_1, \beta_2 \in [0, 1)`.
        eps: :math:`\epsilon \ge 0`.
        weight_decay: :math:`\lambda \ge 0`, coupled (L2 in :math:`g'`) unless
            ``decoupled_weight_decay``.
        amsgrad: keep the running maximum :math:`\hat v` in ``max_exp_avg_sqs``
            (required then).
        l1, maximize: see the module docstring.
    """
    module_for(params).adam_step(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps,
                    weight_decay, l1, decoupled_weight_decay, amsgrad, max_exp_avg_sqs, maximize)


def adamw_step(params, grads, exp_avgs, exp_avg_sqs, *, step, lr=1e-3, beta1=0.9, beta2=0.999,
               eps=1e-8, weight_decay=1e-2, l1=0.0, amsgrad=False, max_exp_avg_sqs=None,
               maximize=False):
    r"""AdamW: :func:`adam_step` with ``decoupled_weight_decay=True``.

    .. math::

        p \leftarrow p\,(1 - \eta\lambda), \text{ then the Adam update of } p

    Defaults as ``torch.optim.AdamW`` (``weight_decay=1e-2``). Arguments and
    errors as :func:`adam_step`.
    """
    adam_step(params, grads, exp_avgs, exp_avg_sqs, step=step, lr=lr, beta1=beta1, beta2=beta2,
              eps=eps, weight_decay=weight_decay, l1=l1, decoupled_weight_decay=True,
              amsgrad=amsgrad, max_exp_avg_sqs=max_exp_avg_sqs, maximize=maximize)
