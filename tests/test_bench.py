"""nnfast bench: option checks before anything runs, the table, the legend, progress, the
DeepSpeed column. What is measured is never timed here: runs are either faked (a fixed
Measurement per case) or tiny real ones whose numbers are not looked at."""

import importlib.machinery
import importlib.util
import io
import json
import re
import subprocess
import sys
import types

import numpy as np
import pytest

import nnfast
import nnfast.bench.__main__ as bench
from nnfast import _core
from nnfast.__main__ import main
from nnfast.bench import cases
from nnfast.bench.cases import BY_NAME, format_count
from nnfast.bench.measure import Measurement
from nnfast.bench.report import COLUMNS, Progress, legend, shown_columns, table


def exit_code(argv):
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def fake_measurement(kernel="adam", shape="1e6", peers=("numpy",), paths=None):
    m = Measurement(kernel, "optimizers", shape, 1_000_000, "float32", 28,
                    paths=dict(paths or {}))
    m.seconds = {"roofline": [1e-3], "nnfast": [1.25e-3]}
    m.seconds.update({peer: [2e-3] for peer in peers})
    return m


@pytest.fixture
def no_deepspeed(monkeypatch):
    """deepspeed made unimportable (where it is installed, its ops would be built)."""
    monkeypatch.setitem(sys.modules, "deepspeed", None)
    cases.deepspeed_optimizers.cache_clear()
    yield
    cases.deepspeed_optimizers.cache_clear()


@pytest.fixture
def measured(monkeypatch, no_deepspeed):
    """Replaces measuring by a fixed Measurement; yields the (kernel, size) pairs asked for."""
    asked = []

    def fake_measure(case, n, dtype, repeat):
        asked.append((case.name, n))
        m = fake_measurement(case.name, format_count(n))
        m.family = case.family
        return m

    monkeypatch.setattr(bench, "measure", fake_measure)
    monkeypatch.setattr(bench, "measure_call_overhead",
                        lambda repeat: ({"adam_step": 2e-6, "np.add": 1e-6}, {}))
    return asked


# ---------------------------------------------------------------- options checked up front

@pytest.mark.parametrize("argv, option", [
    (["--sizes", "-5"], "--sizes"),
    (["--sizes", "0"], "--sizes"),
    (["--sizes", "1.5"], "--sizes"),
    (["--sizes", "1e6,abc"], "--sizes"),
    (["--sizes", "nan"], "--sizes"),
    (["--sizes", "inf"], "--sizes"),
    (["--sizes", "1e6,"], "--sizes"),
    (["--threads", "-1"], "--threads"),
    (["--threads", "0"], "--threads"),
    (["--threads", "1025"], "--threads"),
    (["--threads", "1.5"], "--threads"),
    (["--repeat", "0"], "--repeat"),
    (["--repeat", "two"], "--repeat"),
    (["--kernels", "adam,nope"], "--kernels"),
    (["--kernels", "adam,"], "--kernels"),
    (["--dtype", "int8"], "--dtype"),
])
def test_bad_option_is_a_usage_error_before_measuring(argv, option, measured, capsys):
    assert exit_code(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert "usage: nnfast bench" in err and option in err
    assert measured == []


def test_standalone_module_checks_the_same_options(measured, capsys):
    """python -m nnfast.bench: the same options, checked the same way."""
    with pytest.raises(SystemExit) as stop:
        bench.main(["--sizes", "0"])
    assert stop.value.code == 2
    assert "nnfast bench: error: argument --sizes" in capsys.readouterr().err
    assert bench.main(["--kernels", "sgd", "--sizes", "10"]) == 0
    assert measured == [("sgd", 10)]


@pytest.mark.parametrize("argv, kernels, sizes", [
    (["--kernels", "adam, sgd", "--sizes", "1e3, 2000"], ["adam", "sgd"], [1000, 2000]),
    (["--kernels", "sgd,sgd", "--sizes", "1e6"], ["sgd"], [1000000]),
])
def test_good_options_are_read_as_meant(argv, kernels, sizes, measured, capsys):
    assert exit_code(["bench", *argv]) == 0
    assert measured == [(k, s) for k in kernels for s in sizes]
    assert all(type(s) is int for _, s in measured)


def test_json_path_in_a_missing_folder_rejected_first(tmp_path, measured, capsys):
    path = tmp_path / "missing" / "out.json"
    assert exit_code(["bench", "--kernels", "sgd", "--json", str(path)]) == 2
    assert "--json" in capsys.readouterr().err
    assert measured == []


def test_json_path_that_is_a_folder_rejected_first(tmp_path, measured, capsys):
    assert exit_code(["bench", "--kernels", "sgd", "--json", str(tmp_path)]) == 2
    assert "--json" in capsys.readouterr().err
    assert measured == []


def test_json_check_leaves_no_file_behind(tmp_path, monkeypatch, measured):
    """The writability check creates no file; only the finished run writes it."""
    path = tmp_path / "out.json"
    real_run = bench.run
    exists_at_start = []
    monkeypatch.setattr(bench, "run",
                        lambda args: exists_at_start.append(path.exists()) or real_run(args))
    assert exit_code(["bench", "--kernels", "sgd", "--sizes", "10", "--json", str(path)]) == 0
    assert exists_at_start == [False]
    results = json.loads(path.read_text())["results"]
    assert [(r["kernel"], r["shape"]) for r in results] == [("sgd", "10")]


def test_plot_without_matplotlib_rejected_first(tmp_path, monkeypatch, measured, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert exit_code(["bench", "--kernels", "sgd", "--plot", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert "--plot" in err and "matplotlib" in err
    assert measured == []


def test_plot_path_in_a_missing_folder_rejected_first(tmp_path, measured, capsys):
    pytest.importorskip("matplotlib")
    assert exit_code(["bench", "--kernels", "sgd", "--plot",
                      str(tmp_path / "missing" / "p.png")]) == 2
    assert "--plot" in capsys.readouterr().err
    assert measured == []


def test_plot_of_every_family(tmp_path):
    pytest.importorskip("matplotlib")
    from nnfast.bench.report import save_plot

    results = []
    for name in ("adam", "sigmoid", "l2_loss"):
        m = fake_measurement(name, peers=("numpy", "torch"))
        m.family = BY_NAME[name].family
        results.append(m)
    results[1].seconds["nnfast"] = [1e-4]  # 1000% of roofline: drawn cut, with its value
    path = tmp_path / "p.png"
    save_plot(str(path), results, "a title")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- kernels that need torch

def test_torch_kernel_is_known_and_asked_for_without_torch_is_a_usage_error(
        monkeypatch, measured, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # torch now counts as not importable
    assert "adam_gpt2small" in BY_NAME
    assert exit_code(["bench", "--kernels", "sgd,adam_gpt2small"]) == 2
    err = capsys.readouterr().err
    assert "--kernels" in err and "adam_gpt2small needs torch" in err
    assert measured == []


def test_default_run_without_torch_skips_its_kernel_with_a_note(monkeypatch, measured, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert exit_code(["bench", "--sizes", "10"]) == 0
    names = [name for name, _ in measured]
    needs_torch = [c.name for c in cases.CASES if "torch" in c.requires]
    assert {"adam_gpt2small", "adam_amp", "adam_amp_bf16"} <= set(needs_torch)
    assert names == [c.name for c in cases.CASES if c.name not in needs_torch]
    err = capsys.readouterr().err
    for name in needs_torch:
        assert f"{name} skipped: it needs torch" in err


def test_default_run_with_torch_includes_its_kernel(measured, capsys):
    pytest.importorskip("torch")
    assert exit_code(["bench", "--sizes", "10"]) == 0
    assert "adam_gpt2small" in [name for name, _ in measured]


# ---------------------------------------------------------------- shapes, paths, the table

@pytest.mark.parametrize("n, text", [(1, "1"), (1000, "1,000"), (10_000, "1e4"),
                                     (1_000_000, "1e6"), (64_000_000, "6.4e7"),
                                     (655_360, "655,360"), (124_439_808, "124,439,808")])
def test_format_count(n, text):
    assert format_count(n) == text


@pytest.mark.parametrize("name, n, shape", [
    ("adam", 1e5, "1e5"),
    ("softmax_cross_entropy", 4.096e6, "4096 x 1000"),
    ("softmax_cross_entropy_10", 655360, "65536 x 10"),
    ("cross_entropy", 5000, "5 x 1000"),
    ("adam_list200", 1e5, "200 tensors, 1e5"),
    ("adam_list200", 50, "50 tensors, 50"),
    ("relu", 1000, "1,000"),
])
def test_cases_state_their_shape(name, n, shape, no_deepspeed):
    inputs = BY_NAME[name].inputs(n, np.float32, np.random.default_rng(0))
    assert inputs.shape == shape


def test_model_case_states_its_tensors():
    pytest.importorskip("torch")
    inputs = BY_NAME["adam_gpt2small"].inputs(1e5, np.float32, np.random.default_rng(0))
    assert inputs.shape == f"148 tensors, {format_count(inputs.elements)}"
    assert inputs.paths == {"torch": "fused", "torch_default": "for-loop"}


@pytest.mark.parametrize("name, path", [("adam", "fused"), ("sgd", "fused"),
                                        ("rmsprop", "foreach"), ("lamb", "foreach (apex's math)"),
                                        ("adamax", "foreach"), ("adadelta", "foreach"),
                                        ("adafactor", "foreach"),
                                        ("sigmoid", "aten out="),
                                        ("mse_loss", "autograd"), ("l1_loss", "vector_norm"),
                                        ("nadam", "foreach"), ("radam", "foreach")])
def test_cases_name_the_torch_path(name, path, no_deepspeed):
    pytest.importorskip("torch")
    inputs = BY_NAME[name].inputs(100, np.float32, np.random.default_rng(0))
    assert "torch" in inputs.calls and inputs.paths["torch"] == path


def test_lion_is_compared_with_lion_pytorch(no_deepspeed):
    pytest.importorskip("torch")
    pytest.importorskip("lion_pytorch", reason="lion-pytorch is not installed: the lion row's "
                        "torch column is then empty")
    inputs = BY_NAME["lion"].inputs(100, np.float32, np.random.default_rng(0))
    assert inputs.paths["torch"] == "lion-pytorch"
    inputs.calls["torch"]()


def test_table_prints_shapes_and_the_torch_path():
    text = table([fake_measurement("softmax_cross_entropy", "4096 x 1000", ("numpy", "torch"),
                                   {"torch": "autograd"})])
    header, _, row = text.splitlines()
    assert "shape" in header and "torch path" in header
    assert "4096 x 1000" in row and "autograd" in row
    assert "e+06" not in row


@pytest.mark.parametrize("peers, extra", [
    (("numpy",), set()),
    (("numpy", "torch"), {"x torch", "torch path", "torch % roofline"}),
    (("numpy", "torch", "torch_default"),
     {"x torch", "torch path", "torch % roofline", "x torch default"}),
    (("numpy", "deepspeed"), {"x deepspeed"}),
])
def test_legend_names_only_the_columns_shown(peers, extra):
    results = [fake_measurement(peers=peers)]
    header = set(re.split(r"\s{2,}", table(results).splitlines()[0].strip()))
    always = {"kernel", "shape", "dtype", "nnfast ms", "GB/s", "roofline GB/s", "% roofline",
              "x numpy"}
    assert header == always | extra == set(shown_columns(results))
    explained = {column for column in COLUMNS for line in legend(results).splitlines()
                 if re.match(rf"  {re.escape(column)}\s{{2,}}", line)}
    assert explained == {column for column in header if COLUMNS[column]}
    assert "cache" in legend(results) and "100%" in legend(results)


def test_run_output_names_only_shown_columns(measured, capsys):
    """Without torch's default path measured, no line of the output explains it."""
    assert exit_code(["bench", "--kernels", "sgd", "--sizes", "10"]) == 0
    out = capsys.readouterr().out
    assert "x torch default" not in out and "x deepspeed" not in out


# ---------------------------------------------------------------- progress

class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_is_plain_lines_off_a_terminal():
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(stream, [1e6, 1e6, 3e6], clock)
    progress.start("a 1e6")
    clock.now = 2.0
    progress.start("b 1e6")
    progress.note("a note")
    progress.start("c 3e6")
    progress.finish()
    assert "\r" not in stream.getvalue()
    assert stream.getvalue().splitlines() == [
        "[1/3] a 1e6, eta -", "[2/3] b 1e6, eta 8s", "a note", "[3/3] c 3e6, eta 3s"]


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_rewrites_one_line_on_a_terminal():
    stream = FakeTerminal()
    progress = Progress(stream, [1e6, 1e6], FakeClock())
    progress.start("a")
    progress.start("b")
    progress.finish()
    text = stream.getvalue()
    assert "\n" not in text and text.count("\r") >= 3
    assert text.endswith("\r")


def test_progress_eta_in_minutes():
    clock = FakeClock()
    progress = Progress(io.StringIO(), [1e6] * 4, clock)
    progress.start("a")
    clock.now = 30.0
    progress.start("b")
    assert progress.eta() == pytest.approx(90.0)


# ---------------------------------------------------------------- real runs, in a subprocess

def run_cli(args, block=(), timeout=300):
    """`python -m nnfast bench args` with the modules in `block` made unimportable."""
    code = ("import sys\n"
            f"for name in {list(block)!r}:\n"
            "    sys.modules[name] = None\n"
            "from nnfast.__main__ import main\n"
            f"sys.exit(main(['bench', *{list(args)!r}]))\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout)


def test_tiny_real_run(tmp_path):
    path = tmp_path / "out.json"
    done = run_cli(["--kernels", "sgd", "--sizes", "1000", "--repeat", "1", "--json", str(path)],
                   block=["deepspeed"])
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr  # stderr is a pipe here: plain progress lines
    assert "[1/1] sgd 1,000, eta -" in done.stderr.splitlines()
    lines = done.stdout.splitlines()
    row = next(line for line in lines if line.startswith("sgd "))
    assert "1,000" in row and "float32" in row
    saved = json.loads(path.read_text())
    assert saved["results"][0]["kernel"] == "sgd"
    assert set(saved["results"][0]["seconds"]) >= {"roofline", "nnfast", "numpy"}


def test_tiny_real_run_without_torch():
    done = run_cli(["--kernels", "sgd", "--sizes", "1000", "--repeat", "1"], block=["torch", "deepspeed"])
    assert done.returncode == 0, done.stderr
    assert "x torch" not in done.stdout and "torch path" not in done.stdout
    assert "sgd " in done.stdout


# ---------------------------------------------------------------- the DeepSpeed column

def test_without_deepspeed_the_column_is_absent(no_deepspeed, capsys):
    assert cases.deepspeed_optimizers() is None
    inputs = BY_NAME["adam"].inputs(1000, np.float32, np.random.default_rng(0))
    assert "deepspeed" not in inputs.calls
    assert exit_code(["bench", "--kernels", "adam", "--sizes", "1000", "--repeat", "1"]) == 0
    captured = capsys.readouterr()
    assert "x deepspeed" not in captured.out and "deepspeed" not in captured.err


class FakeDeepSpeedOptimizer:
    """Stands in for DeepSpeed's CPU optimizers: records how it was made and stepped."""
    made = []

    def __init__(self, params, **options):
        self.params = list(params)
        self.options = options
        self.steps = 0
        FakeDeepSpeedOptimizer.made.append(self)

    def step(self):
        for p in self.params:
            p.add_(p.grad, alpha=-1e-3)
        self.steps += 1


@pytest.fixture
def fake_deepspeed(monkeypatch):
    """A deepspeed package whose CPU optimizers are FakeDeepSpeedOptimizer subclasses."""
    pytest.importorskip("torch")
    adam = type("DeepSpeedCPUAdam", (FakeDeepSpeedOptimizer,), {})
    adagrad = type("DeepSpeedCPUAdagrad", (FakeDeepSpeedOptimizer,), {})
    lion = type("DeepSpeedCPULion", (FakeDeepSpeedOptimizer,), {})
    modules = {}
    for name, attrs in [("deepspeed", {}), ("deepspeed.ops", {}),
                        ("deepspeed.ops.adam", {"DeepSpeedCPUAdam": adam}),
                        ("deepspeed.ops.adagrad", {"DeepSpeedCPUAdagrad": adagrad}),
                        ("deepspeed.ops.lion", {"DeepSpeedCPULion": lion})]:
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        module.__dict__.update(attrs)
        modules[name] = module
        monkeypatch.setitem(sys.modules, name, module)
    modules["deepspeed"].ops = modules["deepspeed.ops"]
    modules["deepspeed.ops"].adam = modules["deepspeed.ops.adam"]
    modules["deepspeed.ops"].adagrad = modules["deepspeed.ops.adagrad"]
    modules["deepspeed.ops"].lion = modules["deepspeed.ops.lion"]
    FakeDeepSpeedOptimizer.made = []
    cases.deepspeed_optimizers.cache_clear()
    yield FakeDeepSpeedOptimizer.made
    cases.deepspeed_optimizers.cache_clear()


@pytest.mark.parametrize("name, cls, options", [
    ("adam", "DeepSpeedCPUAdam", {"adamw_mode": False, "weight_decay": 0.0}),
    ("adamw", "DeepSpeedCPUAdam", {"adamw_mode": True, "weight_decay": 1e-2}),
    ("adagrad", "DeepSpeedCPUAdagrad", {}),
    ("lion", "DeepSpeedCPULion", {"betas": (0.9, 0.99)}),
    ("adam_list200", "DeepSpeedCPUAdam", {"adamw_mode": False, "weight_decay": 0.0}),
])
def test_deepspeed_steps_tensors_on_equal_inputs(fake_deepspeed, name, cls, options):
    import torch

    inputs = BY_NAME[name].inputs(1000, np.float32, np.random.default_rng(0))
    assert inputs.paths["deepspeed"] == cls
    (made,) = fake_deepspeed
    assert type(made).__name__ == cls
    assert {k: made.options[k] for k in options} == options
    assert sum(p.numel() for p in made.params) == inputs.elements
    assert all(p.dtype == torch.float32 and p.grad is not None for p in made.params)
    before = made.params[0].clone()
    inputs.calls["deepspeed"]()
    assert made.steps == 1 and not torch.equal(before, made.params[0])


@pytest.mark.parametrize("name, dtype", [("adam", np.float64), ("amsgrad", np.float32),
                                         ("sgd", np.float32), ("rmsprop", np.float32)])
def test_deepspeed_only_where_it_has_the_optimizer(fake_deepspeed, name, dtype):
    inputs = BY_NAME[name].inputs(1000, dtype, np.random.default_rng(0))
    assert "deepspeed" not in inputs.calls and fake_deepspeed == []


def test_deepspeed_column_and_its_build_before_the_timed_run(fake_deepspeed, capsys):
    assert exit_code(["bench", "--kernels", "sgd,adam", "--sizes", "1000", "--repeat", "1"]) == 0
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    build = next(i for i, line in enumerate(err) if "building DeepSpeedCPUAdam" in line)
    assert build < err.index("[1/2] sgd 1,000, eta -")
    assert fake_deepspeed[0].steps == 1 and sum(p.numel() for p in fake_deepspeed[0].params) == 1
    header, _, sgd_row, adam_row = captured.out.split("\n\n")[1].splitlines()
    assert "x deepspeed" in header
    assert sgd_row.split()[-1] == "-" and adam_row.split()[-1].endswith("x")
    assert "x deepspeed" in captured.out.split("\n\n")[2]  # the legend explains it


def test_real_deepspeed_column():
    """With deepspeed installed (not in CI): its CPU Adam times beside nnfast."""
    pytest.importorskip("deepspeed")
    done = run_cli(["--kernels", "adam", "--sizes", "1000", "--repeat", "1"], timeout=900)
    assert done.returncode == 0, done.stderr
    assert "x deepspeed" in done.stdout
    assert done.stdout.startswith("nnfast ")  # DeepSpeed's log lines went to stderr


# ---------------------------------------------------------------- the roofline kernel

@pytest.fixture(params=list(_core.supported_simd()))
def simd_set(request):
    """The test runs with each kernel set this CPU has, then the one chosen at import."""
    before = nnfast.info()["simd"]
    assert _core.use_simd(request.param)
    yield request.param
    assert _core.use_simd(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("counts", [(1, 1, 0), (1, 2, 0), (1, 3, 0), (1, 4, 0), (1, 3, 1), (1, 0, 1),
                                    (2, 0, 1), (1, 0, 0), (4, 0, 0)])
@pytest.mark.parametrize("n", [1, 37, (1 << 17) + 5])  # a tail only; body and tail; threaded
def test_roofline_kernel_moves_the_traffic_it_names(simd_set, counts, n, dtype, rng):
    """s = the sum of the reads; each update += s; each out = s; reads untouched."""
    reads, updates, outs = ([rng.integers(-8, 8, n).astype(dtype) for _ in range(count)]
                            for count in counts)
    before = [a.copy() for a in reads + updates]
    _core.memory_traffic(reads, updates, outs)
    s = sum(before[:counts[0]])
    for read, original in zip(reads, before):
        np.testing.assert_array_equal(read, original)
    for update, original in zip(updates, before[counts[0]:]):
        np.testing.assert_array_equal(update, original + s)
    for out in outs:
        np.testing.assert_array_equal(out, s)


@pytest.mark.parametrize("counts", [(3, 1, 1), (2, 2, 0), (0, 1, 0), (0, 0, 0)])
def test_roofline_kernel_refuses_counts_it_has_no_kernel_for(counts):
    """Counts no case uses have no compiled loop: refused before anything is written."""
    reads, updates, outs = ([np.ones(8, np.float32) for _ in range(count)] for count in counts)
    with pytest.raises(ValueError, match="no roofline kernel for"):
        _core.memory_traffic(reads, updates, outs)
    assert all(np.all(a == 1) for a in reads + updates + outs)


@pytest.mark.parametrize("name, bytes_per_element, peers", [
    ("adam_bf16", 14, {"nnfast", "nnfast_fp32", "torch"}),
    ("adam_bf16_f32_states", 22, {"nnfast", "nnfast_fp32"}),
    ("adam_bf16_masters", 28, {"nnfast", "torch"}),
    ("adam_bf16_remainders", 26, {"nnfast", "torch"}),
    ("relu_bf16", 4, {"nnfast", "nnfast_fp32", "torch"}),
    ("tanh_bf16", 4, {"nnfast", "nnfast_fp32", "torch"}),
    ("softmax_cross_entropy_bf16", 4, {"nnfast", "nnfast_fp32", "torch"}),
])
def test_layout_cases_state_their_bytes_and_run(name, bytes_per_element, peers, no_deepspeed):
    """The 16-bit layout rows: their bytes per element (each array at its own size), their
    peers (torch where it has the layout), and every call runs."""
    case = BY_NAME[name]
    assert case.traffic.bytes_per_element(4) == bytes_per_element
    inputs = case.inputs(1000, np.float32, np.random.default_rng(0))
    if importlib.util.find_spec("torch") is None:
        peers = peers - {"torch"}
    assert set(inputs.calls) == peers
    for call in inputs.calls.values():
        call()


def test_layout_roofline_moves_the_layouts_bytes():
    """The roofline of a layout row: float32 arrays of the row's counts, sized so that their
    bytes equal the layout's."""
    from nnfast.bench.measure import _roofline_call
    case = BY_NAME["adam_bf16_masters"]
    seen = {}
    real = nnfast._core.memory_traffic

    def spy(reads, updates, writes):
        seen["arrays"] = (reads, updates, writes)
        return real(reads, updates, writes)
    nnfast._core.memory_traffic = spy
    try:
        _roofline_call(case, 7000, np.dtype(np.float32), np.random.default_rng(0))()
    finally:
        nnfast._core.memory_traffic = real
    reads, updates, writes = seen["arrays"]
    assert (len(reads), len(updates), len(writes)) == (1, 3, 1)
    moved = sum(a.nbytes for a in reads + writes) + 2 * sum(a.nbytes for a in updates)
    assert moved == 28 * 7000 and all(a.dtype == np.float32 for a in reads + updates + writes)


def test_lamb_case_counts_its_three_passes_and_its_torch_peer_is_lamb(rng):
    """The roofline of the lamb row runs each pass; the passes add up to the 48 bytes per
    float32 element declared; the torch peer (apex's math in foreach ops) computes what
    lamb_step computes."""
    torch = pytest.importorskip("torch")
    from nnfast.bench import cases

    traffic = BY_NAME["lamb"].traffic
    assert traffic.bytes_per_element(4) == 48
    assert sum(t.bytes_per_element(4) for t in traffic.passes) == 48
    cases.load_torch()
    params = [rng.standard_normal(n).astype(np.float32) for n in (300, 7)]
    grads = [rng.standard_normal(n).astype(np.float32) for n in (300, 7)]
    ours = [p.copy() for p in params]
    tensors = [torch.from_numpy(p) for p in params]
    for t, g in zip(tensors, grads):
        t.grad = torch.from_numpy(g)
    cases._torch_lamb(tensors, 1e-2, 10)()
    nnfast.lamb_step(ours, grads, [np.zeros_like(p) for p in ours],
                     [np.zeros_like(p) for p in ours], step=10, lr=1e-2)
    for a, b in zip(params, ours):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_adafactor_case_counts_its_three_passes_and_runs_a_square_matrix():
    """24 bytes per float32 element over the three passes; every implementation's call runs
    (nnfast's and the reference's on one square matrix, torch's on its own copy)."""
    traffic = BY_NAME["adafactor"].traffic
    assert traffic.bytes_per_element(4) == 24
    assert sum(t.bytes_per_element(4) for t in traffic.passes) == 24
    inputs = BY_NAME["adafactor"].inputs(1000, np.float32, np.random.default_rng(0))
    assert inputs.shape == "31 x 31" and inputs.elements == 961
    for call in inputs.calls.values():
        call()
