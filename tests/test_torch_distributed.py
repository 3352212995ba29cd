"""nnfast.torch across processes: DistributedDataParallel with ZeroRedundancyOptimizer
(optimizer_class=nnfast.torch.Adam) and with a plain nnfast.torch.SGD, gloo backend, two
processes on this machine (127.0.0.1), against one process training on the whole batches.

The two ranks' gradients are means over half a batch each; DDP averages them, which equals
the whole batch's mean up to rounding, so the runs agree to the tolerance of
test_torch_optim.py (float64, a few unit roundoffs per step), not bit for bit.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: nnfast.torch needs it "
                                            "(pip install \"nnfast[torch]\")")
if not torch.distributed.is_available():
    pytest.skip("this torch build has no torch.distributed", allow_module_level=True)

import _torch_ddp_worker as worker  # noqa: E402
import nnfast.torch as nt  # noqa: E402
from test_torch_optim import assert_params_close  # noqa: E402

WORLD_SIZE = 2
TIMEOUT_S = 120  # the whole two-process run takes a few seconds; this only stops a hang


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_ranks(output):
    """Start both ranks, wait for them, and tear them down whatever happens.
    Returns (exit codes, their output)."""
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    port = _free_port()
    script = str(Path(worker.__file__))
    ranks = [subprocess.Popen([sys.executable, script, str(rank), str(WORLD_SIZE), str(port),
                               str(output)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for rank in range(WORLD_SIZE)]
    logs = []
    try:
        for rank in ranks:
            logs.append(rank.communicate(timeout=TIMEOUT_S)[0])
    finally:
        for rank in ranks:
            if rank.poll() is None:
                rank.kill()
                rank.communicate()
    return [rank.returncode for rank in ranks], logs


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    output = tmp_path_factory.mktemp("ddp") / "results.pt"
    codes, logs = _run_ranks(output)
    if any(codes) and any("address already in use" in log.lower() for log in logs):
        codes, logs = _run_ranks(output)  # the free port was taken meanwhile: once more
    assert codes == [0] * WORLD_SIZE, "a rank failed:\n" + "\n---\n".join(logs)
    return torch.load(output, weights_only=True)


def _single_process(optimizer_class, kwargs):
    model = worker.make_model()
    optimizer = optimizer_class(model.parameters(), **kwargs)
    worker.train(model, optimizer, slice(None))
    return model, optimizer


@pytest.mark.parametrize("optimizer_class", [nt.Adam, torch.optim.Adam],
                         ids=["nnfast.torch.Adam", "torch.optim.Adam"])
def test_zero_redundancy_with_nnfast_adam_equals_one_process(two_process_results,
                                                             optimizer_class):
    model, _ = _single_process(optimizer_class, worker.ADAM)
    assert_params_close(list(model.parameters()), two_process_results["zero_adam"],
                        worker.DTYPE, worker.STEPS, "ZeRO + DDP, 2 processes")
    initial = list(worker.make_model().parameters())
    moved = [(p - q).abs().max().item() for p, q in zip(model.parameters(), initial)]
    assert min(moved) > 1e-3, "training barely moved the parameters: the comparison is void"


def test_consolidated_zero_state_loads_into_one_process(two_process_results):
    """The sharded state, gathered on rank 0, is a torch Adam checkpoint: it loads into
    torch.optim.Adam and equals the single-process run's state."""
    model, optimizer = _single_process(torch.optim.Adam, worker.ADAM)
    state = two_process_results["zero_adam_state"]
    restored = torch.optim.Adam(worker.make_model().parameters(), **worker.ADAM)
    restored.load_state_dict(state)
    assert restored.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    for i, expected in optimizer.state_dict()["state"].items():
        got = state["state"][i]
        assert got.keys() == expected.keys()
        assert got["step"].item() == expected["step"].item() == worker.STEPS
        assert_params_close([expected[k] for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")],
                            [got[k] for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")],
                            worker.DTYPE, worker.STEPS, f"ZeRO state of parameter {i}")


def test_ddp_with_nnfast_sgd_equals_one_process(two_process_results):
    model, _ = _single_process(nt.SGD, worker.SGD)
    assert_params_close(list(model.parameters()), two_process_results["ddp_sgd"], worker.DTYPE,
                        worker.STEPS, "DDP + nnfast.torch.SGD, 2 processes")
