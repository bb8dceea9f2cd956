"""`panoseti ublox`: talk to UbloxControl servers: init, capture, poll (not yet available)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ublox", help="talk to UbloxControl servers: init, capture, poll (not yet available)"
    )
    parser.set_defaults(func=_not_available)


def _not_available(args: argparse.Namespace) -> int:
    print("panoseti ublox: not yet available in this version", file=sys.stderr)
    return 2
