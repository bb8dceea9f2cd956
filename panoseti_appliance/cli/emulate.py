"""`panoseti emulate-f9t`: run a fake ZED-F9T receiver on a pseudo-terminal or an existing tty.

Prints exactly one line `device: <path>` on stdout once the receiver is ready (scripts and tests
wait for it), logs to stderr, and runs until SIGTERM or SIGINT, then cleans up and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from panoseti_appliance.ublox.emulator.f9tregisters import KeyTable

log = logging.getLogger(__name__)


def _uid(text: str) -> int:
    try:
        value = int(text.strip().removeprefix("0x").removeprefix("0X"), 16)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--uid {text!r} is not hexadecimal; give 10 hex digits such as DF03A241BC"
        ) from None
    if not 0 <= value < 1 << 40:
        raise argparse.ArgumentTypeError(f"--uid {text!r} does not fit 5 bytes (10 hex digits)")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--epoch {text!r} must be a positive number of seconds")
    return value


def _llh(text: str) -> tuple[float, float, float]:
    try:
        lat, lon, height = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--position {text!r} must be LAT,LON,HEIGHT_M, e.g. 37.4219999,-122.0840575,12.345"
        ) from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise argparse.ArgumentTypeError(f"--position {text!r}: lat must be in ±90, lon in ±180")
    return lat, lon, height


def register(parser: argparse.ArgumentParser) -> None:
    """Fill the `panoseti emulate-f9t` parser."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--link", help="stable symlink to the pty (needed to survive re-plug)")
    where.add_argument(
        "--tty",
        metavar="PATH",
        help="serve this existing tty instead of a new pty, e.g. /dev/ttyGS0 (the gadget side of"
        " a USB CDC-ACM link); it is reopened whenever the link hangs up",
    )
    parser.add_argument(
        "--epoch", type=_positive, default=1.0, help="seconds per navigation epoch (default 1)"
    )
    parser.add_argument("--model", default="ZED-F9T", help="MON-VER model (default ZED-F9T)")
    parser.add_argument(
        "--uid", type=_uid, default=None, help="SEC-UNIQID as 10 hex digits (default DF03A241BC)"
    )
    parser.add_argument("--replay", help="ubx_packets.jsonl whose frames are re-emitted in order")
    parser.add_argument(
        "--register-csv", help="u-blox register CSV: only its keys are known, with its defaults"
    )
    parser.add_argument(
        "--position", type=_llh, default=None, help="LAT,LON,HEIGHT_M reported in NAV-PVT"
    )
    parser.add_argument(
        "--nak-key",
        action="append",
        default=[],
        metavar="KEY",
        help="configuration key (CFG_… name or 0x id) the receiver refuses; repeatable",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from panoseti_appliance.ublox.emulator import DEFAULT_LLH, DEFAULT_UID, F9tEmulator

    try:
        emulator = F9tEmulator(
            model=args.model,
            unique_id=DEFAULT_UID if args.uid is None else args.uid,
            epoch_s=args.epoch,
            link=args.link,
            register_csv=args.register_csv,
            replay=args.replay,
            position_llh=args.position or DEFAULT_LLH,
            tty_path=args.tty,
        )
        emulator.nak_keys = {_key_id(emulator.store.table, key) for key in args.nak_key}
    except (OSError, ValueError) as exc:
        print(f"panoseti emulate-f9t: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            emulator.start()
        except (OSError, ValueError) as exc:
            print(f"panoseti emulate-f9t: {exc}", file=sys.stderr)
            return 2
        print(f"device: {emulator.device_path}", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _key_id(table: KeyTable, key: str) -> int:
    """A `--nak-key` value as a key id: a 0x id as given, or a name the receiver knows."""
    text = key.strip()
    if text.lower().startswith("0x"):
        try:
            return int(text, 16)
        except ValueError:
            pass
    else:
        try:
            return table.lookup(text).key_id
        except KeyError:
            pass
    raise ValueError(
        f"--nak-key {key!r} is neither a 0x key id nor a configuration key the receiver knows"
        " (e.g. CFG_TP_FREQ_TP1)"
    )
