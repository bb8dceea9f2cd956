"""Entry point of the `panoseti` command.

Each area owns one module in this package exposing `register(subparsers)`, which adds its
subcommand(s) and sets `func(args) -> int` as the handler. Modules are imported lazily by name so
that a slow import (matplotlib, grpc) only costs the subcommand that needs it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from panoseti_appliance import __version__

#: (module in panoseti_appliance.cli) in the order their subcommands appear in --help.
SUBCOMMAND_MODULES: tuple[str, ...] = ("daq", "ublox", "config", "pff", "sim", "emulate")

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="panoseti",
        description="PANOSETI DAQ-node appliance: images, timing receiver, configuration and tools.",
    )
    parser.add_argument("--version", action="version", version=f"panoseti {__version__}")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=LOG_LEVELS,
        help="logging verbosity (default: info)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMAND_MODULES:
        module = importlib.import_module(f"panoseti_appliance.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
