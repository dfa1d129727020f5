"""The ``natural-bm`` command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="natural-bm",
        description="Boltzmann machines: train, estimate log Z, sample.",
    )
    parser.add_argument("command", choices=["demo"], help="demo: train the MNIST demo RBM")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the command (see COMMAND --help)")
    ns = parser.parse_args(argv)
    if ns.command == "demo":
        from natural_bm import demo

        demo.main(ns.args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
