"""nnfast bench: every kernel against its roofline, NumPy, PyTorch and DeepSpeed, side by side.

For each kernel and size, the roofline kernel (the same memory traffic with
almost no math, run by nnfast's own C++ with the same threads), nnfast, the
NumPy reference, PyTorch's fastest CPU path (if importable; lion-pytorch for Lion)
and, for Adam, AdamW, Adagrad and Lion, DeepSpeed's CPU optimizers (if importable)
alternate sample by
sample; the table gives medians and ratios taken in the same run. Every option
is checked before anything is measured.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys

import nnfast

from . import machine
from .cases import BY_NAME, build_deepspeed_op, deepspeed_compared, format_count
from .measure import measure, measure_call_overhead
from .report import Progress, legend, overhead_line, save_json, save_plot, table

MAX_THREADS = nnfast._core.MAX_THREADS


def _sizes(text):
    """--sizes: comma-separated positive whole numbers, in any float notation (1e6)."""
    sizes = []
    for token in text.split(","):
        token = token.strip()
        try:
            value = float(token)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected element counts like 1e6,1e7, got {token!r}") from None
        if not math.isfinite(value) or value < 1 or value != int(value):
            raise argparse.ArgumentTypeError(
                f"element counts are positive whole numbers, got {token!r}")
        sizes.append(int(value))
    return sizes


def _whole_number(low, high=None):
    """An argparse type: an integer in [low, high] (no upper end if high is None)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"must be {span}, got {value}")
        return value
    return parse


def _kernel_names(text):
    """--kernels: comma-separated names of BY_NAME, spaces around them allowed."""
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown kernels {unknown}; choose from {', '.join(BY_NAME)}")
    return list(dict.fromkeys(names))


def add_arguments(parser):
    """Adds nnfast bench's options to an argparse parser."""
    parser.add_argument("--kernels", type=_kernel_names,
                        help="comma-separated kernel names (default: all): " + ", ".join(BY_NAME))
    parser.add_argument("--sizes", type=_sizes,
                        help="comma-separated element counts, positive whole numbers such as "
                        "1e6,1e7 (default: each kernel's own; losses use rows of their class "
                        "count)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--threads", type=_whole_number(1, MAX_THREADS),
                        help=f"threads for nnfast and torch, 1 to {MAX_THREADS} "
                        "(default: all cores)")
    parser.add_argument("--repeat", type=_whole_number(1), default=10,
                        help="timed samples per implementation, >= 1 (default 10)")
    parser.add_argument("--json", metavar="FILE",
                        help="write machine, versions and every raw timing to FILE")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="bar chart of %% of roofline per kernel family (needs matplotlib)")


def _check_writable(parser, option, path):
    """parser.error unless path can be written (an existing file is left as it was)."""
    if os.path.isdir(path):
        parser.error(f"{option}: {path!r} is a directory")
    existed = os.path.exists(path)
    try:
        with open(path, "a"):
            pass
    except OSError as e:
        parser.error(f"{option}: cannot write {path!r}: {e.strerror}")
    if not existed:
        os.remove(path)


def check(parser, args):
    """Validates what the option types cannot see alone, through parser.error (exit 2):
    a kernel named in --kernels whose requirements are missing, an unwritable --json or
    --plot path, --plot without matplotlib. Sets args.cases (the cases to run) and
    args.skipped (notes on default cases left out for a missing module)."""
    names = args.kernels or list(BY_NAME)
    args.cases, args.skipped = [], []
    for name in names:
        missing = BY_NAME[name].missing()
        if missing and args.kernels:
            parser.error(f"--kernels: {name} needs {', '.join(missing)}, which is not "
                         "importable here")
        if missing:
            args.skipped.append(f"{name} skipped: it needs {', '.join(missing)}, which is not "
                                "importable here")
        else:
            args.cases.append(BY_NAME[name])
    if args.json:
        _check_writable(parser, "--json", args.json)
    if args.plot:
        try:
            importlib.import_module("matplotlib")
        except ImportError:
            parser.error("--plot needs matplotlib, which is not importable here "
                         "(install nnfast's plot extra)")
        _check_writable(parser, "--plot", args.plot)
    return args


def run(args):
    """Measures the checked plan (see check) and prints the table; returns the exit code."""
    if args.threads:
        nnfast.set_num_threads(args.threads)
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    for note in args.skipped:
        print(f"note: {note}", file=sys.stderr)
    plan = [(case, size) for case in args.cases for size in (args.sizes or case.default_sizes)]
    progress = Progress(sys.stderr, [size for _, size in plan])
    for name in sorted({c.deepspeed for c in args.cases if deepspeed_compared(c, args.dtype)}):
        progress.note(f"deepspeed: building {name}'s C++ op before the timed run (a JIT build "
                      "on first use, cached afterwards; can take minutes)")
        build_deepspeed_op(name)
    results = []
    for case, size in plan:
        progress.start(f"{case.name} {format_count(size)}")
        results.append(measure(case, size, args.dtype, args.repeat))
    progress.finish()
    overhead, overhead_samples = measure_call_overhead(max(args.repeat, 10))
    info = machine.describe()
    print(machine.headline(info) + "\n")
    print(table(results))
    print("\n" + legend(results))
    print("\n" + overhead_line(overhead))
    if args.json:
        save_json(args.json, info, results, overhead_samples)
    if args.plot:
        save_plot(args.plot, results, f"% of roofline (medians of {args.repeat} interleaved "
                  f"samples)\n{machine.headline(info)}")
    return 0


def parser():
    """The standalone parser of ``python -m nnfast.bench`` (``nnfast bench`` adds the same
    options to its subcommand)."""
    p = argparse.ArgumentParser(prog="nnfast bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def main(argv=None):
    """``python -m nnfast.bench [options]``: checks the options, runs; returns the exit code."""
    p = parser()
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    return run(check(p, args))


if __name__ == "__main__":
    sys.exit(main())
