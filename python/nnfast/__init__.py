"""nnfast: fast, exact neural-network training kernels.

Optimizer steps (SGD, momentum, Adagrad, RMSprop, Adam, AdamW, AMSGrad, NAdam, RAdam,
LAMB, Lion, Adamax, Adadelta, Adafactor),
activations, losses, and gradient norms and clipping (``grad_norm``,
``clip_grad_norm_``) run as fused C++ kernels on NumPy arrays, in place where
they update state, and as CUDA kernels on GPU arrays of any library
(``nnfast.cuda``). ``nnfast.reference`` holds the same operations in plain NumPy:
the oracle the kernels are tested against. ``nnfast.split_master`` and
``nnfast.join_master`` store float32 master weights losslessly as bfloat16 plus an
int16 remainder.
"""

from typing import Any

from . import _core, _threads
from .activations import (
    leaky_relu,
    leaky_relu_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    tanh,
    tanh_backward,
)
from .complexity import Complexity, complexity
from .losses import cross_entropy, l1_loss, l2_loss, mse_loss, softmax_cross_entropy
from .functional import (
    adagrad_step,
    adam_step,
    adamw_step,
    lamb_step,
    rmsprop_step,
    sgd_step,
    sgdm_step,
    lion_step,
    adamax_step,
    adadelta_step,
    adafactor_step,
)
from .functional import nadam_step, radam_step
from .gradients import clip_grad_norm_, grad_norm
from .precision import bfloat16, join_master, split_master
from . import cuda, optim, reference, schedules  # noqa: E402  (after the kernels they wrap)

__version__: str = _core.build_info()["version"]


def info() -> dict[str, Any]:
    """Build and runtime facts: version, SIMD level, compiler, thread count, CUDA.

    ``simd`` names the kernel set chosen at import: the widest the CPU supports of
    ``avx512bf16`` (AVX-512 with its bfloat16 conversion instruction), ``avx512``,
    ``avx2`` and ``sse2`` on x86-64 (``generic`` elsewhere), or a lower one requested
    with the environment variable ``NNFAST_SIMD``.

    Returns:
        dict with keys ``version``, ``commit`` (the git commit built, if known),
        ``simd``, ``compiler``, ``threads``, and ``cuda``: whether the CUDA
        module was built (``built``), its runtime version and architectures, and the
        number of usable devices (``devices``, 0 without a GPU or driver).
    """
    facts = dict(_core.build_info())
    facts["threads"] = _core.get_num_threads()
    facts["cuda"] = {"built": cuda.is_built(), "devices": cuda.device_count(),
                     **(cuda.build_info() or {})}
    return facts


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for kernels large enough to profit from them (the caller's
    thread is one of them).

    nnfast runs its own thread pool (not OpenMP, and not torch's): it starts on the
    first threaded call, and a process forked after one gets a fresh pool of its own.
    The count at import is ``NNFAST_NUM_THREADS``, else ``OMP_NUM_THREADS``, else the
    cores available to the process (its affinity mask and cgroup CPU quota). The setting
    is process-wide and lasts until the next call.

    Args:
        n: the thread count, an integer with 1 <= n <= 1024.

    Returns:
        None.

    Raises:
        TypeError: ``n`` is not an integer.
        ValueError: ``n`` is outside [1, 1024].
    """
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads kernels use.

    Returns:
        The count set by :func:`set_num_threads`, else the default it describes.
    """
    return _core.get_num_threads()


_core.set_num_threads(_threads.default_thread_count())


__all__ = [
    "Complexity", "adagrad_step", "adam_step", "adamw_step", "bfloat16", "clip_grad_norm_",
    "complexity", "cross_entropy", "cuda", "get_num_threads", "grad_norm", "info", "join_master", "lamb_step", "l1_loss", "l2_loss", "leaky_relu", "leaky_relu_backward",
    "mse_loss", "optim", "reference", "relu", "relu_backward", "rmsprop_step", "schedules",
    "set_num_threads", "sgd_step", "split_master", "sgdm_step", "sigmoid", "sigmoid_backward",
    "softmax_cross_entropy", "tanh", "tanh_backward",
    "nadam_step", "radam_step",
    "lion_step", "adamax_step", "adadelta_step", "adafactor_step",
]
