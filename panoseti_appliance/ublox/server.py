"""`panoseti-ubloxcontrol [--config F]`: the UbloxControl daemon (spec ublox.md §A-C).

A grpc.aio server on the `ublox.listen` addresses (TCP and unix://) with reflection and health.
Health is SERVING while the server is up; the receiver's state never makes the daemon unhealthy,
because the daemon is what brings the receiver back. SIGTERM/SIGINT end every stream with
UNAVAILABLE "Server is shutting down." and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance._proto import ublox_control_pb2_grpc as pb_grpc
from panoseti_appliance.config import ConfigError, UbloxConfig, load_config
from panoseti_appliance.logsetup import setup_logging
from panoseti_appliance.systemd import Notifier, run_watchdog, watchdog_period
from panoseti_appliance.ublox.plan import F9tPlan, InvalidConfig, validate_config
from panoseti_appliance.ublox.servicer import UbloxControlServicer

PROGRAM = "panoseti-ubloxcontrol"
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["UbloxControl"].full_name
log = logging.getLogger(__name__)


def start_plan(cfg: UbloxConfig) -> F9tPlan | None:
    """The validated plan for `init_on_start`, None when it is off.

    The config models already refuse init_on_start without chips; this adds InitF9t's own
    checks (key names, values, TMODE ranges), so a bad chip stops the daemon before it starts.
    """
    chip = cfg.selected_chip() if cfg.init_on_start else None
    if chip is None:
        return None
    try:
        return validate_config(cfg.f9t_config(chip))
    except InvalidConfig as exc:
        raise InvalidConfig([f"ublox.chips ({chip.uid}): {p}" for p in exc.problems]) from None


def _prepare_listen(address: str) -> None:
    if address.startswith("unix:"):
        path = address.removeprefix("unix://") if address.startswith("unix://") else address[5:]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            Path(path).unlink()


async def serve(cfg: UbloxConfig, plan: F9tPlan | None) -> int:
    servicer = UbloxControlServicer(
        max_read_queue_size=cfg.max_read_queue_size,
        ack_timeout=cfg.ack_timeout_seconds,
        poll_timeout=cfg.poll_timeout_seconds,
    )
    server = grpc.aio.server()
    pb_grpc.add_UbloxControlServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    for address in cfg.listen:
        _prepare_listen(address)
        if server.add_insecure_port(address) == 0 and not address.startswith("unix:"):
            log.error("could not listen on %s", address)
            return 1
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("UbloxControl listening on %s", ", ".join(cfg.listen))

    notifier = Notifier()
    notifier.ready(f"listening on {', '.join(cfg.listen)}")
    tasks: list[asyncio.Task[None]] = []
    period = watchdog_period()
    if period is not None:
        tasks.append(asyncio.create_task(run_watchdog(notifier, period)))
    if plan is not None:
        servicer.start_with(plan)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log.info("shutting down")
    notifier.stopping()
    await health_servicer.enter_graceful_shutdown()
    await servicer.shutdown()
    await server.stop(cfg.shutdown_grace_period)
    await servicer.close()
    for task in tasks:
        task.cancel()
    notifier.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML config file (default /etc/panoseti/panoseti.yaml)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        plan = start_plan(config.ublox)
    except (ConfigError, InvalidConfig) as exc:
        print(f"{PROGRAM}: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    setup_logging(config.logging, PROGRAM)
    return asyncio.run(serve(config.ublox, plan))


if __name__ == "__main__":
    sys.exit(main())
