# Signatures of nnfast._cuda (cuda/module.cpp): every operation of nnfast._core, bound by the
# same src/bind/ops.h, src/bind/gradients.h and src/bind/adafactor.h and so with the same signatures, on GPU
# arrays; then its own functions.

from typing import Any

from nnfast._core import (
    adadelta_step as adadelta_step,
    adafactor_step as adafactor_step,
    adagrad_step as adagrad_step,
    adam_step as adam_step,
    clip_grad_norm_ as clip_grad_norm_,
    adamax_step as adamax_step,
    cross_entropy as cross_entropy,
    grad_norm as grad_norm,
    l1_loss as l1_loss,
    l2_loss as l2_loss,
    lamb_step as lamb_step,
    leaky_relu as leaky_relu,
    leaky_relu_backward as leaky_relu_backward,
    lion_step as lion_step,
    mse_loss as mse_loss,
    nadam_step as nadam_step,
    radam_step as radam_step,
    relu as relu,
    relu_backward as relu_backward,
    rmsprop_step as rmsprop_step,
    sgd_step as sgd_step,
    sgdm_step as sgdm_step,
    sigmoid as sigmoid,
    sigmoid_backward as sigmoid_backward,
    softmax_cross_entropy as softmax_cross_entropy,
    tanh as tanh,
    tanh_backward as tanh_backward,
)

def device_count() -> int: ...
# (stream is positional only: the binding gives it no name)
def use_stream(stream: int, /) -> None: ...
def build_info() -> dict[str, Any]: ...
