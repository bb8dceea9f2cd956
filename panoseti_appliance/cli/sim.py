"""`panoseti sim`: run the DAQ simulator standalone, feeding a running DaqData daemon.

uds mode sends to the daemon's Hashpipe sockets, rpc mode streams UploadImages to its address,
the filesystem modes grow a run directory that a daemon with a filesystem source watches. The
simulator's settings come from the appliance config (`daqdata.simulator`, `daqdata.hashpipe`,
`daqdata.filesystem_pipe`), and the flags below override them. A status line (frames sent and
dropped per data product) is printed periodically; SIGINT, SIGTERM, --duration or --frame-limit
stop it cleanly, removing every file it created.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from panoseti_appliance.daqdata.sim.simulator import Simulator

MODES = ("uds", "filesystem_poll", "filesystem_pipe", "rpc")

#: The flags that each replace one `daqdata.simulator` setting when given, keyed by flag; `dest`
#: is the setting's name, so this one table both declares them and says where each one goes.
SETTING_FLAGS: dict[str, dict[str, Any]] = {
    "--mode": {"dest": "mode", "choices": MODES, "help": "how to deliver frames (default: config)"},
    "--module-ids": {
        "dest": "module_ids",
        "type": int,
        "nargs": "+",
        "metavar": "ID",
        "help": "simulated module ids",
    },
    "--data-dir": {
        "dest": "sim_data_dir",
        "type": Path,
        "metavar": "DIR",
        "help": "filesystem modes: where run dirs go",
    },
    "--target": {
        "dest": "rpc_target",
        "metavar": "TARGET",
        "help": "rpc: the daemon's gRPC address (e.g. unix:///run/x.sock)",
    },
    "--movie": {
        "dest": "movie_pff_path",
        "type": Path,
        "metavar": "PFF",
        "help": "movie source file",
    },
    "--ph": {
        "dest": "ph_pff_path",
        "type": Path,
        "metavar": "PFF",
        "help": "pulse-height source file",
    },
    "--replay-timestamps": {
        "dest": "replay_original_timestamps",
        "action": "store_true",
        "default": None,
        "help": "send the recorded time fields instead of restamping them to now",
    },
    "--frame-limit": {
        "dest": "frame_limit",
        "type": int,
        "metavar": "N",
        "help": "stop after N steps",
    },
}


def register(parser: argparse.ArgumentParser) -> None:
    """Fill the `panoseti sim` parser."""
    from panoseti_appliance.config.loader import add_config_argument

    add_config_argument(parser)
    for flag, options in SETTING_FLAGS.items():
        parser.add_argument(flag, **options)
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument("--rate", type=float, metavar="HZ", help="steps per second (0 = max)")
    rate.add_argument("--interval", type=float, metavar="S", help="seconds between steps")
    parser.add_argument(
        "--socket-template",
        metavar="TEMPLATE",
        help="uds: Hashpipe socket path template containing {dp}",
    )
    parser.add_argument(
        "--upload-batch",
        type=int,
        default=16,
        metavar="N",
        help="rpc: most images per UploadImages request; images already waiting go together "
        "(default 16)",
    )
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument(
        "--status-interval",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between status lines (default 2; 0 = only the final one)",
    )
    parser.set_defaults(func=run)


class UsageError(Exception):
    """A flag or config value that cannot work; the message names it and the fix."""


def _positive(value: float | None, flag: str) -> None:
    if value is not None and not value > 0:
        raise UsageError(f"{flag} must be > 0, got {value}")


def build_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Simulator settings from the config file overlaid with the command-line flags."""
    from panoseti_appliance.config.loader import (
        ConfigError,
        load_config_from_args,
        render_problems,
    )

    try:
        cfg = load_config_from_args(args)
    except ConfigError as exc:
        raise UsageError(render_problems(exc)) from exc
    sim: dict[str, Any] = cfg.daqdata.simulator.model_dump()
    if args.rate is not None:
        if args.rate < 0:
            raise UsageError(f"--rate must be >= 0 (0 = as fast as possible), got {args.rate}")
        sim["update_interval_seconds"] = 0.0 if args.rate == 0 else 1.0 / args.rate
    if args.interval is not None:
        if args.interval < 0:
            raise UsageError(f"--interval must be >= 0 seconds, got {args.interval}")
        sim["update_interval_seconds"] = args.interval
    _positive(args.duration, "--duration")
    if args.upload_batch < 1:
        raise UsageError(f"--upload-batch must be >= 1, got {args.upload_batch}")
    if args.frame_limit is not None and args.frame_limit < 0:
        raise UsageError(f"--frame-limit must be >= 0, got {args.frame_limit}")
    for options in SETTING_FLAGS.values():
        value = getattr(args, options["dest"])
        if value is not None:
            sim[options["dest"]] = value
    for module_id in sim["module_ids"]:
        if not 0 <= module_id <= 65535:
            raise UsageError(f"--module-ids: {module_id} is not a module id (0..65535)")
    template = args.socket_template or cfg.daqdata.hashpipe.socket_template
    if "{dp}" not in template:
        raise UsageError(f"--socket-template {template!r} must contain {{dp}}")
    target = sim["rpc_target"] or cfg.daqdata.unix_listen_address()
    return {
        "sim": sim,
        "socket_template": template,
        "pipe_name": cfg.daqdata.filesystem_pipe.pipe_name,
        "rpc_target": target,
        "upload_batch": args.upload_batch,
    }


def run(args: argparse.Namespace) -> int:
    try:
        settings = build_settings(args)
        return asyncio.run(_run(settings, args.duration, args.status_interval))
    except UsageError as exc:
        print(f"panoseti sim: {exc}", file=sys.stderr)
        return 2


async def _run(settings: dict[str, Any], duration: float | None, status_every: float) -> int:
    from pydantic import ValidationError

    from panoseti_appliance.config import SimulatorConfig
    from panoseti_appliance.daqdata.sim.simulator import Simulator, SimulatorError

    try:
        cfg = SimulatorConfig.model_validate(settings["sim"])
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UsageError(problems) from exc
    simulator = Simulator(
        cfg,
        socket_template=settings["socket_template"],
        pipe_name=settings["pipe_name"],
        rpc_target=settings["rpc_target"],
        upload_batch=settings["upload_batch"],
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await simulator.start()
    except SimulatorError as exc:
        print(f"panoseti sim: {exc}", file=sys.stderr)
        return 1
    where = {
        "uds": settings["socket_template"],
        "rpc": settings["rpc_target"],
    }.get(cfg.mode, str(cfg.sim_data_dir))
    print(f"simulating {cfg.mode} to {where}: modules {cfg.module_ids}", flush=True)
    started = time.monotonic()
    failure = None
    try:
        await _wait(simulator, stop, duration, status_every, started)
    except SimulatorError as exc:
        failure = str(exc)
    finally:
        await simulator.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    elapsed = time.monotonic() - started
    print(
        f"stopped after {elapsed:.1f}s, {simulator.steps} steps: {simulator.stats.status_line()}",
        flush=True,
    )
    if failure is not None:
        print(f"panoseti sim: {failure}", file=sys.stderr)
        return 1
    return 0


async def _wait(
    simulator: Simulator, stop: asyncio.Event, duration: float | None, every: float, started: float
) -> None:
    """Until stop is set, the duration is over or the step loop ends; print status meanwhile."""
    finished = asyncio.ensure_future(simulator.wait())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while True:
            now = time.monotonic()
            left = None if duration is None else started + duration - now
            if left is not None and left <= 0:
                return
            timeout = min(x for x in (left, every if every > 0 else None, 3600.0) if x is not None)
            done, _ = await asyncio.wait(
                {finished, stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if finished in done:
                finished.result()  # re-raise a failed step loop
                return
            if stopped in done:
                return
            if every > 0:
                print(
                    f"[{time.monotonic() - started:7.1f}s] steps={simulator.steps} "
                    f"{simulator.stats.status_line()}",
                    flush=True,
                )
    finally:
        for fut in (finished, stopped):
            fut.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fut
