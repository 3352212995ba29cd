"""Command line: ``nnfast bench [options]`` runs the benchmarks, ``nnfast info`` prints the
build, ``nnfast help [command]`` (or ``--help``) says how; a bare ``nnfast`` prints help."""

from __future__ import annotations

import argparse
import json
import sys

import nnfast


def _parser():
    """The parser of every command; each subcommand's parser is kept in its `parser` default."""
    from .bench.__main__ import __doc__ as bench_doc, add_arguments

    top = argparse.ArgumentParser(prog="nnfast", description="nnfast: fast, exact neural-network "
                                  "training kernels. Commands:")
    top.add_argument("--version", action="version", version=f"nnfast {nnfast.__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    bench = commands.add_parser("bench", help="time every kernel against its roofline and its "
                                "peers", description=bench_doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(bench)
    info = commands.add_parser("info", help="print the build as JSON (version, SIMD, threads, "
                               "CUDA)", description="Prints nnfast.info() as JSON: the "
                               "version, the SIMD kernels in use, threads and CUDA.")
    helper = commands.add_parser("help", help="show the help of nnfast or of a command",
                                 description="Shows the help of nnfast or of COMMAND.")
    helper.add_argument("topic", nargs="?", choices=("bench", "info", "help"), metavar="COMMAND",
                        help="bench, info or help")
    for name, sub in (("bench", bench), ("info", info), ("help", helper)):
        sub.set_defaults(parser=sub)
    top.set_defaults(parser=top, subparsers={"bench": bench, "info": info, "help": helper})
    return top


def main(argv=None):
    """Runs the command line; returns the exit code (0 done, 2 a usage error: argparse
    exits with it)."""
    top = _parser()
    args = top.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        top.print_help()
        return 0
    if args.command == "help":
        (args.subparsers[args.topic] if args.topic else top).print_help()
        return 0
    if args.command == "info":
        print(json.dumps(nnfast.info(), indent=2))
        return 0
    from .bench.__main__ import check, run

    return run(check(args.parser, args))


if __name__ == "__main__":
    sys.exit(main())
