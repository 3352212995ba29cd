"""nnfast.torch refuses what torch.optim refuses, with the same exception type, and a refused
step changes nothing (skipped where torch is not installed).

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
needs an exception from this rule. torch's database module imports ``expecttest``: where that
is not installed, the database tests skip, saying so, and the others run.
"""

import re

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: nnfast.torch needs it "
                                            "(pip install \"nnfast[torch]\")")
import nnfast.torch as nt  # noqa: E402  (after the importorskip)
from test_torch_optim import OPTIMIZERS  # noqa: E402

try:
    import expecttest  # noqa: F401  (torch's database module imports it)
except ModuleNotFoundError:
    INFOS = None
else:
    from torch.testing._internal.common_optimizers import OptimizerErrorEnum, optim_db
    INFOS = {info.name: info for info in optim_db if info.name in OPTIMIZERS}
NEEDS_DATABASE = pytest.mark.skipif(
    INFOS is None, reason="torch's optimizer test database "
    "(torch.testing._internal.common_optimizers) needs expecttest, which is not installed")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]


def _error_inputs(name, device, dtype):
    return INFOS[name].optim_error_inputs_func(device=device, dtype=dtype)


def _cases():
    if INFOS is None:
        yield pytest.param(None, None, None, None, id="no-database", marks=NEEDS_DATABASE)
        return
    for name in OPTIMIZERS:
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
    keyword arguments that appear in it (a plural such as ``betas`` also as its singular,
    Adafactor's ``eps`` as the "epsilon1" or "epsilon2" of its pair), else the parameters ("params", "parameter", ...; not "param_groups", which prefixes
    nnfast's messages)."""
    named = [re.escape(key) for key in entry.optimizer_error_input.kwargs
             if re.search(rf"\b({re.escape(key)}|{re.escape(key.rstrip('s'))})\b",
                          entry.error_regex)
             or (key == "eps" and re.search(r"\bepsilon[12]\b", entry.error_regex))]
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


#: nnfast.torch's optimizers that torch.optim does not have (Lion is lion-pytorch's), so its
#: database has no entry for them: their checks are in test_torch_optim.py.
NOT_TORCHS = {"Lion"}


@NEEDS_DATABASE
def test_database_covers_every_optimizer():
    assert sorted(INFOS) == sorted(n for n in OPTIMIZERS if hasattr(torch.optim, n))
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


# --------------------------------------------------------------------------- refused steps


def _assert_step_refused(optimizer, match):
    """``optimizer.step()`` raises ValueError matching ``match`` and changes no parameter,
    state tensor or step count, and adds no state."""
    params = [p.detach().clone() for group in optimizer.param_groups for p in group["params"]]
    state = {id(p): {key: value.clone() for key, value in st.items()}
             for p, st in optimizer.state.items()}
    with pytest.raises(ValueError, match=match):
        optimizer.step()
    exactly = dict(rtol=0, atol=0, equal_nan=True)  # a stored count may be NaN (refused)
    torch.testing.assert_close(
        [p.detach() for group in optimizer.param_groups for p in group["params"]], params,
        **exactly)
    torch.testing.assert_close({id(p): st for p, st in optimizer.state.items()}, state,
                               **exactly)


# Hyperparameters of each optimizer set to 1e39, which is finite in float64 and rounds to
# infinity in float32.
OVERFLOWING = [
    ("SGD", dict(momentum=0.9), "lr"),
    ("SGD", dict(momentum=0.9), "momentum"),
    ("SGD", dict(momentum=0.9), "dampening"),
    ("Adagrad", dict(), "lr"),
    ("Adagrad", dict(), "lr_decay"),
    ("RMSprop", dict(), "eps"),
    ("RMSprop", dict(), "weight_decay"),
    ("Adam", dict(), "lr"),
    ("Adam", dict(), "eps"),
    ("AdamW", dict(), "weight_decay"),
    ("Adamax", dict(), "lr"),
    ("Adamax", dict(), "eps"),
    ("Adadelta", dict(), "lr"),
    ("Adadelta", dict(), "eps"),
    ("Lion", dict(), "lr"),
    ("Lion", dict(), "weight_decay"),
]


@pytest.mark.parametrize("name, kwargs, key", OVERFLOWING)
def test_hyperparameter_overflowing_float32_refuses_the_step_and_changes_nothing(
        name, kwargs, key):
    """A hyperparameter finite in float64 but not in float32 is refused for float32
    parameters before anything is written: also the float64 parameters of the same group,
    and those of an earlier group, keep their values, states and step counts."""
    earlier, wide, narrow = (_parameter(torch.float64), _parameter(torch.float64),
                             _parameter(torch.float32))
    optimizer = getattr(nt, name)([{"params": [earlier]}, {"params": [wide, narrow]}],
                                  **kwargs)
    optimizer.step()
    optimizer.param_groups[1][key] = 1e39
    _assert_step_refused(optimizer, rf"param_groups\[1\]: {key}: 1e\+39 rounds to infinity in float32")


def test_the_same_value_runs_for_float64_parameters():
    p, q = _parameter(torch.float64), _parameter(torch.float64)
    torch.optim.Adam([p], eps=1e39).step()
    nt.Adam([q], eps=1e39).step()
    torch.testing.assert_close(q, p)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", [float("inf"), -float("inf")])
def test_infinite_hyperparameter_is_refused(dtype, value):
    optimizer = nt.SGD([_parameter(dtype)], lr=0.1, momentum=0.9)
    optimizer.param_groups[0]["dampening"] = value
    _assert_step_refused(optimizer, r"param_groups\[0\]: dampening: must be finite, got -?inf")


def test_overflowing_hyperparameter_is_refused_when_the_group_is_added():
    with pytest.raises(ValueError, match=r"param_groups\[0\]: lr: 1e\+39 rounds to infinity in float32"):
        nt.Adam([_parameter(torch.float32)], lr=1e39)
    optimizer = nt.Adam([_parameter(torch.float64)], lr=1e39)
    with pytest.raises(ValueError, match=r"param_groups\[1\]: lr: 1e\+39 rounds to infinity in float32"):
        optimizer.add_param_group({"params": [_parameter(torch.complex64)]})
    assert len(optimizer.param_groups) == 1


@pytest.mark.parametrize("steps_before", [0, 1])
def test_a_step_the_kernels_refuse_stores_no_state_and_no_count(monkeypatch, steps_before):
    """A refusal from the kernels themselves (they validate a call whole before writing)
    leaves the parameter's state and step count as they were: a first step stores no state,
    a later one does not advance the count."""
    p = _parameter()
    optimizer = nt.Adam([p])
    for _ in range(steps_before):
        optimizer.step()

    def refuse(*args, **kwargs):
        raise ValueError("lr: refused by the kernel")

    monkeypatch.setattr(nt._kernels, "adam_step", refuse)
    _assert_step_refused(optimizer, "refused by the kernel")


def test_a_parameter_twice_in_a_group_is_refused_before_anything_is_written():
    """torch warns of the duplicate (optim_db's entry) and updates it twice; the kernels
    update each memory once per call, so the step refuses it, before the group ahead of it
    is updated."""
    earlier, p = _parameter(torch.float64), _parameter(torch.float32)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optimizer = nt.Adam([{"params": [earlier]}, {"params": [p, p]}])
    _assert_step_refused(optimizer, r"param_groups\[1\]\['params'\]\[1\] is the memory of "
                                    r"param_groups\[1\]\['params'\]\[0\] again")


def test_a_gradient_that_is_its_parameter_is_refused_before_anything_is_written():
    earlier, p = _parameter(torch.float64), _parameter(torch.float32)
    p.grad = p.detach()
    optimizer = nt.SGD([{"params": [earlier]}, {"params": [p]}], lr=0.1, momentum=0.9)
    _assert_step_refused(optimizer, r"param_groups\[1\]\['params'\]\[0\]\.grad shares memory "
                                    r"with param_groups\[1\]\['params'\]\[0\]")


@pytest.mark.parametrize("count", [torch.tensor(-1.0), torch.tensor(1.5),
                                   torch.tensor(float("nan")), torch.tensor([1.0, 2.0])])
def test_a_stored_step_count_that_is_not_a_count_is_refused_before_anything_is_written(count):
    earlier, p = _parameter(torch.float64), _parameter(torch.float32)
    optimizer = nt.Adam([{"params": [earlier]}, {"params": [p]}])
    optimizer.step()
    optimizer.state[p]["step"] = count
    _assert_step_refused(optimizer, r"the state 'step' of param_groups\[1\]\['params'\]\[0\] "
                                    r"must be a one-element tensor holding an integer >= 0")
