"""nnfast.lion_step against DeepSpeed's DeepSpeedCPULion, each timed in a process of its own.

In one process the two cannot be interleaved fairly: after a DeepSpeed call its OpenMP
threads keep cores busy, and whatever is timed next (nnfast, or the roofline kernel) runs
at a fraction of its speed. So each measurement here is a fresh process that steps one
float32 tensor of n elements (lr 1e-4, betas 0.9/0.99, lion_step's defaults, no weight
decay) a few times, then times 40 samples of calls lasting at least 2 ms and prints the
median. The two alternate ROUNDS times per size; the table gives the best median of each
(the least disturbed by other load) and their ratio, DeepSpeed's time / nnfast's.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/lion_vs_deepspeed.py [--sizes 1e5,1e6,1e7] [--rounds 4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

ONE_RUN = """
import contextlib, sys, time
import numpy as np
impl, n = sys.argv[1], int(float(sys.argv[2]))
rng = np.random.default_rng(0)
p = rng.standard_normal(n).astype(np.float32)
g = rng.standard_normal(n).astype(np.float32)
m = np.abs(rng.standard_normal(n).astype(np.float32)) * 1e-2
if impl == "nnfast":
    import nnfast
    step = lambda: nnfast.lion_step(p, g, m, lr=1e-4)
else:
    import torch
    with contextlib.redirect_stdout(sys.stderr):  # DeepSpeed logs to stdout
        from deepspeed.ops.lion import DeepSpeedCPULion
    t = torch.from_numpy(p)
    t.grad = torch.from_numpy(g)
    step = DeepSpeedCPULion([t], lr=1e-4, betas=(0.9, 0.99)).step
for _ in range(5):
    step()
calls = max(1, int(2e-3 / (n * 2e-9)))  # a sample lasts about 2 ms at 10 GB/s
samples = []
for _ in range(40):
    start = time.perf_counter()
    for _ in range(calls):
        step()
    samples.append((time.perf_counter() - start) / calls)
print(sorted(samples)[len(samples) // 2])
"""


def median_ms(impl, n):
    """The median time of one step of `impl` on n elements, in a fresh process (ms)."""
    out = subprocess.run([sys.executable, "-c", ONE_RUN, impl, str(n)], check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1]) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6,1e7", help="comma-separated sizes")
    parser.add_argument("--rounds", type=int, default=4, help="alternations per size")
    args = parser.parse_args()
    print(f"{'elements':>10} {'nnfast ms':>10} {'deepspeed ms':>13} {'x deepspeed':>12}")
    for size in args.sizes.split(","):
        n = int(float(size))
        best = {"nnfast": float("inf"), "deepspeed": float("inf")}
        for _ in range(args.rounds):
            for impl in best:
                best[impl] = min(best[impl], median_ms(impl, n))
        print(f"{size:>10} {best['nnfast']:>10.4f} {best['deepspeed']:>13.4f} "
              f"{best['deepspeed'] / best['nnfast']:>11.2f}x")


if __name__ == "__main__":
    main()
