"""`panoseti emulate-f9t`: run a fake ZED-F9T receiver on a pseudo-terminal (not yet available)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "emulate-f9t", help="run a fake ZED-F9T receiver on a pseudo-terminal (not yet available)"
    )
    parser.set_defaults(func=_not_available)


def _not_available(args: argparse.Namespace) -> int:
    print("panoseti emulate-f9t: not yet available in this version", file=sys.stderr)
    return 2
