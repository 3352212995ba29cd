"""The roofline kernel against a plain C loop of the same traffic built with -O3 -march=native.

Builds benchmarks/native_traffic.c as a shared library with the system C compiler, then
times, interleaved sample by sample on the same arrays and thread count: that C loop,
nnfast's roofline kernel (``nnfast._core.memory_traffic``) with Adam's traffic (the
gradient read, p, m, v updated in place) and nnfast's adam_step itself. Prints medians and
the ratios; the roofline kernel is as fast as it should be when its ratio to the C loop
is ~1.00.

    python benchmarks/native_traffic.py [--sizes 1e7,6.4e7] [--threads 2] [--repeat 15]
"""

from __future__ import annotations

import argparse
import ctypes
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np

import nnfast
from nnfast import _core
from nnfast.bench.measure import interleaved

SOURCE = pathlib.Path(__file__).with_name("native_traffic.c")
BYTES_PER_ELEMENT = 28  # float32 Adam: grad read (4), p, m, v read and written (24)


def build_native(directory):
    """Compiles native_traffic.c into directory; returns its adam_traffic as a ctypes function."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise SystemExit("no C compiler (cc, gcc or clang) on PATH")
    library = pathlib.Path(directory) / "native_traffic.so"
    subprocess.run([compiler, "-O3", "-march=native", "-std=c11", "-fopenmp", "-shared", "-fPIC",
                    str(SOURCE), "-o", str(library)], check=True)
    fn = ctypes.CDLL(str(library)).adam_traffic
    pointer = ctypes.POINTER(ctypes.c_float)
    fn.argtypes = [pointer, pointer, pointer, pointer, ctypes.c_int64, ctypes.c_int]
    fn.restype = None
    return fn


def calls_for(native, n, threads, rng):
    """The three calls to time, each on its own arrays of n float32 elements."""
    def arrays():
        g = (rng.standard_normal(n) * 1e-3).astype(np.float32)
        return g, *(np.abs(rng.standard_normal(n)).astype(np.float32) * 1e-2 for _ in range(3))

    g, p, m, v = arrays()
    pointers = [a.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) for a in (g, p, m, v)]

    rg, rp, rm, rv = arrays()
    ag, ap, am, av = arrays()
    return {"native C": lambda: native(*pointers, n, threads),
            "nnfast roofline": lambda: _core.memory_traffic([rg], [rp, rm, rv], []),
            "nnfast adam_step": lambda: nnfast.adam_step([ap], [ag], [am], [av], step=10)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1e7,6.4e7", help="element counts (default 1e7,6.4e7)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every call (default 2)")
    parser.add_argument("--repeat", type=int, default=15, help="samples per call (default 15)")
    args = parser.parse_args(argv)
    nnfast.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    info = nnfast.info()
    print(f"nnfast {nnfast.__version__} ({info.get('simd')}), {args.threads} threads, "
          f"medians of {args.repeat} interleaved samples")
    with tempfile.TemporaryDirectory() as directory:
        native = build_native(directory)
        for size in (int(float(s)) for s in args.sizes.split(",")):
            seconds = interleaved(calls_for(native, size, args.threads, rng), args.repeat)
            medians = {name: float(np.median(s)) for name, s in seconds.items()}
            base = medians["native C"]
            print(f"\n{size:.3g} elements ({size * BYTES_PER_ELEMENT / 1e6:.0f} MB moved per call)")
            for name, t in medians.items():
                low, high = np.percentile(seconds[name], [25, 75]) * 1e3
                print(f"  {name:17s} {t * 1e3:8.3f} ms (middle half {low:.3f}-{high:.3f})"
                      f"  {size * BYTES_PER_ELEMENT / t / 1e9:6.1f} GB/s"
                      f"  {100 * base / t:5.1f}% of native C")
    return 0


if __name__ == "__main__":
    sys.exit(main())
