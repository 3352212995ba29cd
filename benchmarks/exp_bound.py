"""What bounds softmax cross-entropy and tanh on the CPU: the exponential, not memory.

Softmax cross-entropy must take one exp per logit (plus a max pass and a gradient
pass); sigmoid takes one exp per element too (plus an add and a divide), with the
same memory traffic (one array read, one written). Timed side by side, interleaved,
at the same number of elements, each against the roofline kernel of that traffic:
if sigmoid itself reaches only X% of the roofline, softmax cross-entropy cannot beat
X%. relu (no exp) shows what the same traffic costs without one.

    python benchmarks/exp_bound.py [--threads 1 2] [--repeat 15]
"""

from __future__ import annotations

import argparse

import numpy as np

import nnfast
from nnfast import _core
from nnfast.bench.measure import interleaved


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    rows, classes = 4096, 1000
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, classes)).astype(np.float32)
    labels = rng.integers(0, classes, rows)
    out = np.empty_like(x)
    calls = {
        "roofline (1 read, 1 write)": lambda: _core.memory_traffic([x], [], [out]),
        "relu": lambda: nnfast.relu(x, out=out),
        "sigmoid (1 exp)": lambda: nnfast.sigmoid(x, out=out),
        "tanh (1 exp)": lambda: nnfast.tanh(x, out=out),
        "softmax_cross_entropy": lambda: nnfast.softmax_cross_entropy(x, labels, grad_out=out),
    }
    print(f"{rows} x {classes} float32 ({x.size:.3g} elements), nnfast {nnfast.info()['simd']}, "
          f"medians of {args.repeat} interleaved samples")
    for threads in args.threads:
        nnfast.set_num_threads(threads)
        seconds = interleaved(calls, args.repeat)
        roofline = float(np.median(seconds["roofline (1 read, 1 write)"]))
        print(f"\n{threads} thread(s)    {'ms':>8} {'ns/element':>11} {'% roofline':>11}")
        for name, times in seconds.items():
            t = float(np.median(times))
            print(f"{name:27} {t * 1e3:8.3f} {t / x.size * 1e9:11.3f} {100 * roofline / t:10.0f}%")


if __name__ == "__main__":
    main()
