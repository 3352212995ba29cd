"""One rank of the two-process test in test_torch_distributed.py (run as a script), and the
model, data and loop that the test's single-process runs share with it.

Usage: python _torch_ddp_worker.py RANK WORLD_SIZE PORT OUTPUT_FILE

Each rank joins a gloo group on 127.0.0.1:PORT and trains, on its half of every batch:
  1. a DistributedDataParallel model with ZeroRedundancyOptimizer(optimizer_class=
     nnfast.torch.Adam), then consolidates the sharded optimizer state on rank 0;
  2. a DistributedDataParallel model with a plain nnfast.torch.SGD (momentum).
DDP averages the gradients of the two halves, so each step equals one on the whole batch.
Rank 0 saves the final parameters and the consolidated state to OUTPUT_FILE.
"""

import sys
from datetime import timedelta

import torch

STEPS = 20
BATCH = 32
DTYPE = torch.float64
ADAM = dict(lr=1e-2, weight_decay=0.01, amsgrad=True)
SGD = dict(lr=0.05, momentum=0.9, nesterov=True)


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16),
                               torch.nn.Tanh(), torch.nn.Linear(16, 3)).to(DTYPE)


def batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(BATCH, 6, generator=g, dtype=DTYPE),
             torch.randn(BATCH, 3, generator=g, dtype=DTYPE)) for _ in range(STEPS)]


def train(model, optimizer, rows):
    """STEPS steps of mean squared error on rows ``rows`` of each batch."""
    for x, y in batches():
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x[rows]), y[rows]).backward()
        optimizer.step()


def final_parameters(model):
    return [p.detach().clone() for p in model.parameters()]


def run_rank(rank, world_size, port, output):
    import torch.distributed as dist
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel

    import nnfast.torch

    torch.set_num_threads(1)  # two processes on a small machine
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size, timeout=timedelta(seconds=60))
    try:
        rows = slice(rank * BATCH // world_size, (rank + 1) * BATCH // world_size)
        results = {}

        model = DistributedDataParallel(make_model())
        zero = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=nnfast.torch.Adam,
                                       **ADAM)
        # Each rank's nnfast.torch.Adam holds a shard: some of the parameters, not all.
        assert isinstance(zero.optim, nnfast.torch.Adam)
        shard = sum(len(group["params"]) for group in zero.optim.param_groups)
        assert 0 < shard < len(list(model.parameters())), shard
        train(model, zero, rows)
        results["zero_adam"] = final_parameters(model.module)
        zero.consolidate_state_dict(to=0)
        if rank == 0:
            results["zero_adam_state"] = zero.state_dict()

        model = DistributedDataParallel(make_model())
        train(model, nnfast.torch.SGD(model.parameters(), **SGD), rows)
        results["ddp_sgd"] = final_parameters(model.module)

        if rank == 0:
            torch.save(results, output)
        dist.barrier()  # rank 1 stays until rank 0 has written
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    run_rank(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
