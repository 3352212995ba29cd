"""nnfast bench: every kernel against its roofline, NumPy and PyTorch, side by side.

For each kernel and size, the roofline kernel (the same memory traffic with
almost no math, run by nnfast's own C++ with the same threads), nnfast, the
NumPy reference and PyTorch's fastest CPU path (if importable) alternate sample
by sample; the table gives medians and ratios taken in the same run.
"""

from __future__ import annotations

import argparse
import sys

import nnfast

from . import machine
from .cases import BY_NAME, CASES
from .measure import measure, measure_call_overhead
from .report import overhead_line, save_json, save_plot, table


def parse(argv):
    parser = argparse.ArgumentParser(prog="nnfast bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernels", help="comma-separated kernel names (default: all): "
                        + ", ".join(BY_NAME))
    parser.add_argument("--sizes", help="comma-separated element counts, e.g. 1e6,1e7 "
                        "(default: each kernel's own; losses use rows of their class count)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--threads", type=int, help="threads for nnfast and torch (default: all cores)")
    parser.add_argument("--repeat", type=int, default=10, help="timed samples per implementation (default 10)")
    parser.add_argument("--json", metavar="FILE", help="write machine, versions and every raw timing to FILE")
    parser.add_argument("--plot", metavar="FILE.png", help="bar chart of %% of roofline (needs matplotlib)")
    args = parser.parse_args(argv)
    names = args.kernels.split(",") if args.kernels else list(BY_NAME)
    unknown = [k for k in names if k not in BY_NAME]
    if unknown:
        parser.error(f"unknown kernels {unknown}; choose from {', '.join(BY_NAME)}")
    args.kernels = names
    try:
        args.sizes = [float(s) for s in args.sizes.split(",")] if args.sizes else None
    except ValueError:
        parser.error(f"--sizes: expected numbers like 1e6,1e7, got {args.sizes!r}")
    if args.repeat < 1:
        parser.error("--repeat: must be >= 1")
    return args


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.threads:
        nnfast.set_num_threads(args.threads)
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    plan = [(name, size) for name in args.kernels
            for size in (args.sizes or BY_NAME[name].default_sizes)]
    results = []
    for i, (name, size) in enumerate(plan, 1):
        print(f"\r[{i}/{len(plan)}] {name} {size:.3g}".ljust(60), end="", file=sys.stderr, flush=True)
        results.append(measure(BY_NAME[name], size, args.dtype, args.repeat))
    print("\r".ljust(61) + "\r", end="", file=sys.stderr)
    overhead, overhead_samples = measure_call_overhead(max(args.repeat, 10))
    info = machine.describe()
    print(f"nnfast {info['versions']['nnfast']} | {info['nnfast']['simd']} | "
          f"{info['nnfast']['threads']} threads | {info['cpu']}")
    print("medians of interleaved samples; % roofline = time of a same-traffic trivial kernel / time;"
          " x numpy, x torch (its fastest path), x torch default = their time / nnfast's\n")
    print(table(results))
    print("\n" + overhead_line(overhead))
    if args.json:
        save_json(args.json, info, results, overhead_samples)
    if args.plot:
        save_plot(args.plot, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
