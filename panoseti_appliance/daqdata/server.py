"""`panoseti-daqdata [--config F]`: the DaqData daemon (spec daqdata.md §A-B, design.md §3-5).

Start-up order: validate the configuration (problems printed, exit 2, nothing started); open the
Hashpipe sockets for the daemon's lifetime (adopting systemd's by data-product name); start the
gRPC server on every `daqdata.listen` address with reflection and grpc.health.v1; start hp_io from
the `hp_io` section; then report SERVING and READY=1.

Health: the overall service ("") is SERVING once the boot-time hp_io start is over (whatever
its outcome: InitHpIo must stay reachable to repair a failed start) and NOT_SERVING from the
moment shutdown begins. `daqdata.DaqData` is SERVING exactly while hp_io is RUNNING, so it reads
NOT_SERVING while a re-init is stopping and starting ingestion.

SIGTERM/SIGINT: NOT_SERVING and STOPPING=1, every stream ends UNAVAILABLE "Server is shutting
down.", hp_io and the simulator stop, the server stops within `shutdown_grace_period`, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from panoseti_appliance.config import (
    ApplianceConfig,
    ConfigError,
    DaqDataConfig,
    load_config,
    render_problems,
)
from panoseti_appliance.daqdata.hpio import HpIo, HpIoSettings, HpIoStartError, HpIoState
from panoseti_appliance.daqdata.hub import Hub
from panoseti_appliance.daqdata.servicer import SERVICE_NAME, DaqDataServicer, add_to_server
from panoseti_appliance.daqdata.sources.base import SourceError, format_counts
from panoseti_appliance.daqdata.sources.hashpipe import HashpipeListener
from panoseti_appliance.logsetup import setup_logging
from panoseti_appliance.systemd import Notifier, listen_fds, run_watchdog, watchdog_period

PROGRAM = "panoseti-daqdata"
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
log = logging.getLogger(__name__)


class ListenError(Exception):
    """A listen address cannot be used; str(err) names it and the fix."""


def unix_path(address: str) -> Path | None:
    """The socket path of a `unix:` gRPC address (`unix:///abs` or `unix:rel`), else None."""
    if not address.startswith("unix:"):
        return None
    rest = address[len("unix:") :]
    return Path(rest[2:] if rest.startswith("//") else rest)


def prepare_unix_listener(path: Path) -> None:
    """Create the socket's directory; replace a stale socket file, refuse any other file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ListenError(
            f"daqdata.listen: {path} exists and is not a socket; remove it or choose another path"
        )
    path.unlink()


def adopted_hashpipe_sockets(cfg: DaqDataConfig) -> dict[str, socket.socket]:
    """Listening sockets passed by systemd, keyed by data product (FileDescriptorName=)."""
    inherited = listen_fds()
    out: dict[str, socket.socket] = {}
    for name, socks in inherited.items():
        if name in cfg.hashpipe.data_products and socks:
            out[name] = socks[0]
            for extra in socks[1:]:
                extra.close()
        else:
            log.warning("ignoring %d inherited socket(s) named %r", len(socks), name)
            for sock in socks:
                sock.close()
    return out


class DaqDataDaemon:
    """Everything one daemon process runs: hub, hp_io, servicer, gRPC server, health, notify."""

    def __init__(self, config: ApplianceConfig) -> None:
        self.config = config
        self.cfg = config.daqdata
        self.hub = Hub()
        listener = None
        if self.cfg.hashpipe.enabled:
            inherited = adopted_hashpipe_sockets(self.cfg)
            listener = HashpipeListener(self.cfg.hashpipe, inherited)
        self.engine = HpIo(self.cfg, self.hub, listener)
        self.servicer = DaqDataServicer(self.cfg, self.hub, self.engine)
        self.server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        self.health = health.aio.HealthServicer()
        self.notifier = Notifier()
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()  # health updates in flight
        self._stopping = False

    def _set_health(self, service: str, status: int) -> None:
        task = asyncio.create_task(self.health.set(service, status))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _state_changed(self, state: HpIoState) -> None:
        if self._stopping:
            return
        self._set_health(SERVICE_NAME, SERVING if state is HpIoState.RUNNING else NOT_SERVING)
        self.notifier.status(f"hp_io {state.value}")

    async def start(self) -> None:
        """Open sockets and listeners, start the server, then hp_io from the defaults."""
        add_to_server(self.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, HEALTH_SERVICE, reflection.SERVICE_NAME), self.server
        )
        for address in self.cfg.listen:
            path = unix_path(address)
            if path is not None:
                prepare_unix_listener(path)
            try:
                port = self.server.add_insecure_port(address)
            except RuntimeError as exc:
                raise ListenError(
                    f"daqdata.listen: cannot listen on {address} ({exc}); stop what uses it "
                    "or change daqdata.listen"
                ) from None
            if port == 0 and path is None:
                raise ListenError(
                    f"daqdata.listen: cannot listen on {address}; change daqdata.listen"
                )
        await self.health.set("", NOT_SERVING)
        await self.health.set(SERVICE_NAME, NOT_SERVING)
        self.engine.on_state(self._state_changed)
        try:
            self.engine.open_listener()
        except SourceError as exc:
            log.error("Hashpipe sockets not available: %s", exc)
        await self.server.start()
        log.info("DaqData listening on %s", ", ".join(self.cfg.listen))
        if self.cfg.init_from_default:
            settings = HpIoSettings.from_config(self.config.hp_io)
            async with self.engine.lock:
                try:
                    await self.engine.start(settings)
                except HpIoStartError as exc:
                    log.error("hp_io did not start from the configured defaults: %s", exc)
        await self.health.set("", SERVING)
        self.notifier.ready(f"hp_io {self.engine.state.value}")
        period = watchdog_period()
        if period is not None:
            self._tasks.append(asyncio.create_task(run_watchdog(self.notifier, period)))
        self._tasks.append(asyncio.create_task(self._log_counters()))

    async def stop(self) -> None:
        """Graceful shutdown within shutdown_grace_period."""
        self._stopping = True
        log.info("shutting down")
        self.notifier.stopping()
        await self.health.enter_graceful_shutdown()
        grace = self.cfg.shutdown_grace_period
        await self.servicer.shutdown(grace)
        await self.engine.close()
        await self.server.stop(grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._log_counters_once(logging.INFO)
        self.notifier.close()
        for address in self.cfg.listen:
            path = unix_path(address)
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()

    def _log_counters_once(self, level: int) -> None:
        log.log(
            level,
            "counters: published=%d sent=%d uploaded=%d readers=%d discarded: %s",
            self.hub.published,
            self.servicer.responses_sent,
            self.servicer.images_uploaded,
            len(self.servicer.readers),
            format_counts(dict(sorted(self.engine.discarded.items()))),
        )
        for name, stats in self.engine.source_stats().items():
            log.log(level, "counters %s: %s", name, format_counts(stats.snapshot()))

    async def _log_counters(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.stats_log_interval_seconds)
            self._log_counters_once(logging.DEBUG)


async def serve(config: ApplianceConfig) -> int:
    """Run the daemon until SIGTERM or SIGINT; the process exit code."""
    daemon = DaqDataDaemon(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await daemon.start()
    except ListenError as exc:
        log.error("%s", exc)
        await daemon.stop()
        return 1
    await stop.wait()
    await daemon.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", help="YAML (or original JSON) config file (default /etc/panoseti/panoseti.yaml)"
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"{PROGRAM}: {render_problems(err)}", file=sys.stderr)
        return 2
    setup_logging(config.logging, PROGRAM)
    return asyncio.run(serve(config))


if __name__ == "__main__":
    sys.exit(main())
