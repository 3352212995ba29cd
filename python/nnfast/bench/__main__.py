"""``nnfast bench`` / ``python -m nnfast.bench``: nnfast vs the NumPy reference."""

from __future__ import annotations

import argparse
import json
import sys

import nnfast

from .cases import BY_NAME, CASES
from .measure import measure
from .report import table


def parse(argv):
    parser = argparse.ArgumentParser(prog="nnfast bench", description=__doc__)
    parser.add_argument("--kernels", default=",".join(c.name for c in CASES),
                        help="comma-separated kernel names (default: all)")
    parser.add_argument("--size", type=float, default=1e6,
                        help="elements per kernel call (default 1e6; losses use rows of 1000 classes)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--repeat", type=int, default=15, help="timed samples per implementation")
    parser.add_argument("--threads", type=int, default=None, help="kernel threads (default: all cores)")
    parser.add_argument("--json", metavar="FILE", help="also write every raw timing to FILE")
    args = parser.parse_args(argv)
    unknown = [k for k in args.kernels.split(",") if k not in BY_NAME]
    if unknown:
        parser.error(f"unknown kernels {unknown}; choose from {sorted(BY_NAME)}")
    return args


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.threads:
        nnfast.set_num_threads(args.threads)
    names = args.kernels.split(",")
    results = []
    for i, name in enumerate(names, 1):
        print(f"\r[{i}/{len(names)}] {name:<28}", end="", file=sys.stderr, flush=True)
        results.append(measure(BY_NAME[name], int(args.size), args.dtype, args.repeat))
    print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
    info = nnfast.info()
    print(f"nnfast {info['version']} | threads {info['threads']} | openmp {info['openmp']} | "
          f"simd {info['simd']}")
    print(f"median of {args.repeat} samples; speedup = NumPy reference time / nnfast time\n")
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "results": [r.__dict__ for r in results]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
