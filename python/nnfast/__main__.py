"""Command line: ``nnfast bench [options]`` runs the benchmarks, ``nnfast info`` prints the build."""

from __future__ import annotations

import json
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv else "bench"
    if command == "bench":
        from .bench.__main__ import main as bench_main

        return bench_main(argv)
    if command == "info":
        import nnfast

        print(json.dumps(nnfast.info(), indent=2))
        return 0
    print(f"usage: nnfast {{bench,info}} [options]  (unknown command {command!r})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
