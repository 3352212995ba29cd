"""nnfast.torch refuses what torch.optim refuses, with the same exception type (skipped where
torch is not installed).

The main inputs are torch's own: the error inputs of its optimizer test database
(``optim_db`` in ``torch.testing._internal.common_optimizers``), read when the tests are
collected, so a torch release's new entries are checked without editing this file. Each
entry gives the constructor's arguments, whether torch raises at construction or at the
first step, the exception (or warning) type and torch's message. nnfast's class must raise
the same type at the same point, with a message that names the argument: one of the entry's
keyword arguments that torch's message names, or the parameters where it names none. Each
entry is first run through torch.optim itself, the way torch's own test runs it, so an entry
that this file ran wrongly would fail there, not pass here.

The database holds CPU entries and CUDA ones (which need a GPU to be built); no entry
needs an exception from this rule.
"""

import re

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: nnfast.torch needs it "
                                            "(pip install \"nnfast[torch]\")")
pytest.importorskip("expecttest", reason="torch's optimizer test database "
                    "(torch.testing._internal.common_optimizers) imports expecttest")
from torch.testing._internal.common_optimizers import (  # noqa: E402
    OptimizerErrorEnum, optim_db)

import nnfast.torch as nt  # noqa: E402  (after the importorskips)

INFOS = {info.name: info for info in optim_db if info.name in nt.__all__}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]


def _error_inputs(name, device, dtype):
    return INFOS[name].optim_error_inputs_func(device=device, dtype=dtype)


def _cases():
    for name in nt.__all__:
        if name not in INFOS:
            continue  # test_database_covers_every_optimizer reports it
        for device in DEVICES:
            for dtype in DTYPES:
                for index, entry in enumerate(_error_inputs(name, device, dtype)):
                    desc = entry.optimizer_error_input.desc
                    yield pytest.param(name, device, dtype, index,
                                       id=f"{name}-{device}-{str(dtype)[6:]}-{index}-{desc}")


def _named_arguments(entry):
    """Patterns of the arguments torch's message names, to be found as words: the entry's
    keyword arguments that appear in it (a plural such as ``betas`` also as its singular),
    else the parameters ("params", "parameter", ...; not "param_groups", which prefixes
    nnfast's messages)."""
    named = [re.escape(key) for key in entry.optimizer_error_input.kwargs
             if re.search(rf"\b({re.escape(key)}|{re.escape(key.rstrip('s'))})\b",
                          entry.error_regex)]
    return named or [r"param(eter)?s?"]


def _raise_as_entry_says(cls, entry):
    """Run ``cls`` on the entry as torch's test_errors does (construct, then step when the
    error is a step error) inside the matching ``pytest.raises`` or ``pytest.warns``; return
    the raised exception's or warning's message."""
    inputs = entry.optimizer_error_input
    expect = pytest.warns if issubclass(entry.error_type, Warning) else pytest.raises
    if entry.error_on == OptimizerErrorEnum.CONSTRUCTION_ERROR:
        with expect(entry.error_type) as caught:
            cls(inputs.params, **inputs.kwargs)
    elif entry.error_on == OptimizerErrorEnum.STEP_ERROR:
        optimizer = cls(inputs.params, **inputs.kwargs)
        with expect(entry.error_type) as caught:
            optimizer.step()
    else:
        raise AssertionError(f"optim_db has a new error_on, {entry.error_on}: teach this "
                             f"test when to expect it")
    if expect is pytest.warns:
        return str(caught.pop(entry.error_type).message)
    return str(caught.value)


def test_database_covers_every_optimizer():
    assert sorted(INFOS) == sorted(nt.__all__)
    assert all(INFOS[name].optim_error_inputs_func is not None for name in INFOS)


@pytest.mark.parametrize("name, device, dtype, index", list(_cases()))
def test_refuses_what_torch_refuses(name, device, dtype, index):
    # Each run gets its own entry: an entry's tensors are not shared between the two.
    theirs = _error_inputs(name, device, dtype)[index]
    their_message = _raise_as_entry_says(INFOS[name].optim_cls, theirs)
    assert re.search(theirs.error_regex, their_message), their_message

    ours = _error_inputs(name, device, dtype)[index]
    message = _raise_as_entry_says(getattr(nt, name), ours)
    named = _named_arguments(ours)
    assert any(re.search(rf"\b{pattern}\b", message) for pattern in named), (
        f"the message {message!r} names none of {named}")


# --------------------------------------------------------------------------- beyond optim_db
# Inputs torch's constructors or steps refuse that the database lists only for CUDA (which
# may be absent here) or not at all; the expected type is whatever torch raises.


def _parameter(dtype=torch.float32):
    p = torch.nn.Parameter(torch.ones(3, dtype=dtype))
    p.grad = torch.full((3,), 0.5, dtype=dtype)
    return p


def _error_of(run):
    try:
        run()
    except Exception as error:  # noqa: BLE001  (whatever torch raises is the expectation)
        return error
    raise AssertionError("torch.optim accepted the input")


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "Adam", "AdamW"])
@pytest.mark.parametrize("kwargs, argument", [
    (dict(fused=True, foreach=True), "foreach"),
    (dict(fused=True, differentiable=True), "differentiable"),
])
def test_fused_conflicts_raise_as_torch(name, kwargs, argument):
    expected = _error_of(lambda: getattr(torch.optim, name)([_parameter()], **kwargs))
    with pytest.raises(type(expected), match=argument):
        getattr(nt, name)([_parameter()], **kwargs)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "Adam", "AdamW"])
def test_fused_step_refuses_complex_parameters_as_torch(name):
    def step(cls):
        cls([_parameter(torch.complex64)], fused=True).step()

    expected = _error_of(lambda: step(getattr(torch.optim, name)))
    with pytest.raises(type(expected), match="complex"):
        step(getattr(nt, name))


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("kwargs, argument", [
    (dict(betas=(0.9, torch.tensor(0.99))), "betas"),
    (dict(betas=(torch.tensor(0.9), 0.99)), "betas"),
    (dict(betas=(0, 0.5)), "betas"),  # torch asks for floats: ints are neither
    (dict(lr=torch.tensor(0.01), foreach=True), "lr"),
    (dict(betas=(torch.tensor(0.9), torch.tensor(0.99)), foreach=True), "betas"),
])
def test_tensor_hyperparameters_raise_as_torch(name, kwargs, argument):
    expected = _error_of(lambda: getattr(torch.optim, name)([_parameter()], **kwargs))
    with pytest.raises(type(expected), match=re.escape(argument)):
        getattr(nt, name)([_parameter()], **kwargs)


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", dict(lr=torch.tensor(0.01), foreach=True)),
    ("Adagrad", dict(lr=torch.tensor(0.01), foreach=True)),
    ("RMSprop", dict(lr=torch.tensor(0.01), foreach=True)),
    ("Adam", dict(lr=torch.tensor(0.01), fused=True)),
    ("Adam", dict(betas=(torch.tensor(0.9), torch.tensor(0.99)))),
    ("AdamW", dict(lr=torch.tensor(0.01), foreach=False)),
])
def test_tensor_hyperparameters_torch_accepts_run(name, kwargs):
    """The other side of the rules above: what torch accepts, nnfast.torch steps with."""
    p, q = _parameter(torch.float64), _parameter(torch.float64)
    getattr(torch.optim, name)([p], **kwargs).step()
    getattr(nt, name)([q], **kwargs).step()
    torch.testing.assert_close(q, p)
