"""`panoseti-daqdata`: the DaqData daemon as a service of the shared runner (docs/daqdata.md).

What is DaqData's own: the Hashpipe sockets (adopted from systemd by bound path, or bound here;
they live for the daemon's lifetime), the hub, hp_io started from the `hp_io` section at boot, and
the servicer. The runner does the rest (runtime.runner).

Health: overall "" follows the runner (SERVING once up, NOT_SERVING while something is down or
shutting down). `daqdata.DaqData` is SERVING exactly while hp_io is RUNNING, so it reads
NOT_SERVING while a re-init is stopping and starting ingestion. READY=1 comes once the Hashpipe
sockets accept and the boot-time hp_io start is over, whatever its outcome: InitHpIo must stay
reachable to repair a failed start, which is also retried by itself (hp_io).

Shutdown: streams end UNAVAILABLE "Server is shutting down.", hp_io and the simulator stop, then
the producers' connections are handed to the next process through systemd's fd store, with
every byte read from them meanwhile (daqdata.handover).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import grpc

from panoseti_appliance.config import ApplianceConfig
from panoseti_appliance.daqdata.server.handover import Drain
from panoseti_appliance.daqdata.server.hpio import HpIo, HpIoSettings, HpIoStartError, HpIoState
from panoseti_appliance.daqdata.server.hub import Hub
from panoseti_appliance.daqdata.server.servicer import SERVICE_NAME, DaqDataServicer, add_to_server
from panoseti_appliance.daqdata.server.sources.base import format_counts
from panoseti_appliance.daqdata.server.sources.hashpipe import HashpipeListener
from panoseti_appliance.runtime.inherited import Inherited
from panoseti_appliance.runtime.rate import Rate
from panoseti_appliance.runtime.runner import Runtime, run
from panoseti_appliance.runtime.supervisor import Policy

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

PROGRAM = "panoseti-daqdata"
log = logging.getLogger(__name__)


class DaqDataService:
    """Everything DaqData runs: Hashpipe listener, hub, hp_io, servicer."""

    grpc_services: tuple[str, ...] = (SERVICE_NAME,)
    listen_setting = "daqdata.listen"

    def __init__(self, config: ApplianceConfig, drain: Drain | None = None) -> None:
        self.config = config
        self.cfg = config.daqdata
        self.listen_addresses = list(self.cfg.listen)
        self.shutdown_grace = self.cfg.shutdown_grace_period
        self.grpc_options = self.cfg.grpc_options()
        self.metrics_listen = self.cfg.metrics_listen
        self.hub = Hub()
        self.listener = (
            HashpipeListener(self.cfg.hashpipe, drain=drain) if self.cfg.hashpipe.enabled else None
        )
        self.engine = HpIo(self.cfg, self.hub, self.listener)
        self.servicer = DaqDataServicer(
            self.cfg, self.hub, self.engine, self.cfg.data_roots(config.hp_io)
        )
        self.runtime: Runtime | None = None
        self._ingest_rate = Rate()
        self._stopping = False

    def register(self, server: grpc.aio.Server) -> None:
        add_to_server(self.servicer, server)

    async def open(self, inherited: Inherited) -> None:
        if self.listener is not None:
            self.listener.open(inherited)

    async def start(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.engine.attach(runtime.supervisor)
        self.engine.on_state(self._state_changed)
        if self.listener is not None:
            listener = self.listener
            runtime.supervisor.spawn(
                "hashpipe listener", lambda: listener.run(self.engine.uds_sink), Policy.RESTART
            )
        runtime.supervisor.spawn("counters", self._log_counters, Policy.RESTART)
        if self.cfg.init_from_default:
            settings = HpIoSettings.from_config(self.config.hp_io)
            async with self.engine.lock:
                try:
                    await self.engine.start(settings)
                except HpIoStartError as exc:
                    log.error("hp_io did not start from the configured defaults: %s", exc)
                    self.engine.restart_later(settings, str(exc))

    def _state_changed(self, state: HpIoState) -> None:
        if self._stopping or self.runtime is None:
            return
        self.runtime.set_health(SERVICE_NAME, state is HpIoState.RUNNING)
        self.runtime.changed()

    def problems(self) -> list[str]:
        return [self.engine.problem] if self.engine.problem else []

    def collect(self) -> Iterable[Metric]:
        from panoseti_appliance.daqdata.server.metrics import collect  # only when scraped

        return collect(self)

    def wedged(self) -> str | None:
        return self.listener.wedged() if self.listener is not None else None

    def status(self) -> str:
        state = self.engine.state.value
        rate = self._ingest_rate.update(self.hub.published)
        streams = len(self.servicer.readers)
        parts = [f"hp_io {state}", f"{rate:.0f} frames/s in", f"{streams} streams"]
        if self.listener is not None:
            parts.append(f"{self.listener.producers} Hashpipe connections")
        return "; ".join(parts)

    async def stop(self) -> None:
        self._stopping = True
        if self.listener is not None:
            self.listener.begin_handover()
        await self.servicer.shutdown(self.shutdown_grace)
        await self.engine.close()

    async def close(self) -> None:
        if self.runtime is not None:
            self._log_counters_once(logging.INFO)
        if self.listener is not None:  # last: the producers are unread from here on
            await self.listener.handover()
            self.listener.close()

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


def main(
    argv: Sequence[str] | None = None,
    inherited: Inherited | None = None,
    drain: Drain | None = None,
) -> int:
    return run(
        PROGRAM,
        "the DaqData daemon: serves PANOSETI images over gRPC",
        lambda config: DaqDataService(config, drain),
        argv,
        inherited,
    )
