"""Entry point of the `panoseti` command.

Each area owns one module in this package exposing `register(parser)`, which fills the parser
made here for its subcommand (help from SUBCOMMANDS, description from the module's docstring) and
sets `func(args) -> int` as the handler. Only the module of the subcommand being
run is imported (the others get a one-line placeholder for `--help`), so `panoseti pff info` does
not pay for grpc, pandas or matplotlib imports it never uses.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from panoseti_appliance import __version__
from panoseti_appliance.cli.extras import extras_explained

#: subcommand → (module in panoseti_appliance.cli, one-line help), in --help order.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "daq": ("daq", "talk to DaqData servers: ping, stream, view, phdist, speed, init"),
    "ublox": ("ublox", "talk to UbloxControl servers: init, capture, poll"),
    "config": ("config", "check, show, import and document the appliance configuration"),
    "pff": ("pff", "inspect PFF data files"),
    "sim": ("sim", "run the DAQ simulator against a DaqData daemon or a data directory"),
    "emulate-f9t": ("emulate", "run a fake ZED-F9T receiver on a pseudo-terminal"),
    "install-units": (
        "install_units",
        "install the systemd units, udev rule, sysusers.d and tmpfiles.d entries",
    ),
}
SUBCOMMAND_MODULES: tuple[str, ...] = tuple(module for module, _ in SUBCOMMANDS.values())

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _requested(argv: Sequence[str]) -> str | None:
    """The subcommand named in argv, if any (the first argument that is one)."""
    for arg in argv:
        if arg in SUBCOMMANDS:
            return arg
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with the full subparser for the requested subcommand (all when argv is None)."""
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
    wanted = None if argv is None else _requested(argv)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if argv is None or name == wanted:
            module = importlib.import_module(f"panoseti_appliance.cli.{module_name}")
            module.register(
                subparsers.add_parser(
                    name,
                    help=help_text,
                    description=module.__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                )
            )
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    with extras_explained():
        return _run(list(sys.argv[1:] if argv is None else argv))


def _run(args_list: list[str]) -> int:
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        rc = args.func(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`panoseti … | head`): stop quietly, as Unix tools do, and keep
        # the interpreter from complaining again while flushing stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a killed writer
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
