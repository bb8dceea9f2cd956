"""`panoseti config`: check, show, import the appliance configuration (not yet available)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config", help="check, show, import the appliance configuration (not yet available)"
    )
    parser.set_defaults(func=_not_available)


def _not_available(args: argparse.Namespace) -> int:
    print("panoseti config: not yet available in this version", file=sys.stderr)
    return 2
