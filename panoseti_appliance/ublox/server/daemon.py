"""`panoseti-ubloxcontrol`: the UbloxControl daemon as a service of the shared runner.

What is its own: the servicer, which owns the receiver link, and the start-up plan
(`ublox.init_on_start`, validated before anything starts: a bad chip exits 78 like any
configuration problem). A per-device instance is told its device on the command line
(`--set ublox.device=/dev/%I` in panoseti-ubloxcontrol@.service).

Health: overall "" follows the runner. `ubloxcontrol.UbloxControl` is SERVING while a receiver
link is up (InitF9t succeeded and the device is present), NOT_SERVING while idle, initialising or
waiting for the device to come back. READY=1 comes once the server serves and, with
init_on_start, once the first bring-up attempt is over (the receiver may still be absent or
failing; the daemon keeps trying and says so in STATUS). The watchdog stops when the link's
threads stop making progress (a wedged port).

The receiver is the serial device unless the service is built with another transport factory
and its DeviceStat (`transport.py`), as the tests do with the emulator's in-memory receiver:
`functools.partial(UbloxService, transport_factory=..., device_stat=...)` is a service factory
for `runtime.runner.run` and `Runner`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import grpc

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance.config import ApplianceConfig, ConfigError, UbloxConfig
from panoseti_appliance.runtime.inherited import Inherited
from panoseti_appliance.runtime.rate import Rate
from panoseti_appliance.runtime.runner import Runtime, run
from panoseti_appliance.ublox.server.decode import add_to_server
from panoseti_appliance.ublox.server.patterns import PatternLimits
from panoseti_appliance.ublox.server.plan import F9tPlan, InvalidConfig, validate_config
from panoseti_appliance.ublox.server.servicer import UbloxControlServicer
from panoseti_appliance.ublox.server.transport import (
    DeviceStat,
    SerialTransport,
    TransportFactory,
    node_mode,
)

PROGRAM = "panoseti-ubloxcontrol"
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["UbloxControl"].full_name
if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)


def start_plan(cfg: UbloxConfig) -> F9tPlan | None:
    """The validated plan for `init_on_start`, None when it is off.

    The configuration models judged every chip by InitF9t's own rules (`ublox.rules`) when the
    configuration loaded, so a bad chip has already stopped the daemon with exit 78; a plan
    that still failed would be reported the same way.
    """
    chip = cfg.selected_chip() if cfg.init_on_start else None
    if chip is None:
        return None
    try:
        return validate_config(cfg.f9t_config(chip))
    except InvalidConfig as exc:
        raise ConfigError([f"ublox.chips ({chip.uid}): {p}" for p in exc.problems]) from None


class UbloxService:
    """The servicer and the receiver it brings up."""

    grpc_services: tuple[str, ...] = (SERVICE_NAME,)
    listen_setting = "ublox.listen"

    def __init__(
        self,
        config: ApplianceConfig,
        transport_factory: TransportFactory = SerialTransport,
        device_stat: DeviceStat = node_mode,
    ) -> None:
        self.cfg = config.ublox
        self.plan = start_plan(self.cfg)
        self.listen_addresses = list(self.cfg.listen)
        self.shutdown_grace = self.cfg.shutdown_grace_period
        self.grpc_options = self.cfg.grpc_options()
        self.metrics_listen = self.cfg.metrics_listen
        self.servicer = UbloxControlServicer(
            max_read_queue_size=self.cfg.max_read_queue_size,
            ack_timeout=self.cfg.ack_timeout_seconds,
            poll_timeout=self.cfg.poll_timeout_seconds,
            transport_factory=transport_factory,
            device_stat=device_stat,
            pattern_limits=PatternLimits(self.cfg.max_patterns, self.cfg.max_pattern_chars),
        )
        self._messages = Rate()

    def register(self, server: grpc.aio.Server) -> None:
        add_to_server(self.servicer, server)

    async def open(self, inherited: Inherited) -> None:
        """Nothing but gRPC to listen on: the serial port is opened by InitF9t."""

    async def start(self, runtime: Runtime) -> None:
        servicer = self.servicer

        def link_changed(up: bool) -> None:
            runtime.set_health(SERVICE_NAME, up)
            runtime.changed()

        servicer.attach(runtime.supervisor, link_changed, runtime.changed)
        if self.plan is not None:
            await servicer.start_with(self.plan)

    def problems(self) -> list[str]:
        return []

    def collect(self) -> Iterable[Metric]:
        from panoseti_appliance.ublox.server.metrics import collect  # only when scraped

        return collect(self)

    def wedged(self) -> str | None:
        return self.servicer.wedged()

    def status(self) -> str:
        servicer = self.servicer
        rate = self._messages.update(servicer.frames_received)
        return (
            f"device {servicer.device or self.cfg.device}; receiver {servicer.describe_state()}; "
            f"{rate:.1f} msg/s; {servicer.subscriber_count} subscribers"
        )

    async def stop(self) -> None:
        await self.servicer.shutdown()

    async def close(self) -> None:
        await self.servicer.close()


def main(argv: Sequence[str] | None = None, inherited: Inherited | None = None) -> int:
    return run(
        PROGRAM,
        "the UbloxControl daemon: configures and streams the node's ZED-F9T",
        UbloxService,
        argv,
        inherited,
    )
