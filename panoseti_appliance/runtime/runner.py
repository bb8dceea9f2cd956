"""The one start-up and shutdown sequence both daemons run (docs/daqdata.md, "Running it").

Start: configuration (`--config`, repeatable `--set`; problems printed as `panoseti config check`
prints them, at error priority in the journal, exit 78) → gRPC server with the service, health and
reflection → listeners, bound or adopted from systemd (unusable: one line naming the address and
the fix, exit 69) → the service's own work (ingestion, the receiver) → READY=1. Then a monitor
keeps health and the STATUS line current, and the watchdog pings while the service is not wedged.

Stop (SIGTERM/SIGINT): STOPPING=1, health NOT_SERVING, the service ends its streams and stops its
work, the server stops within the service's grace period, supervised tasks are cancelled, and the
service releases what it holds last (DaqData hands its producer connections to the next process).
Exit 0; 70 when a supervised task could not be kept running (systemd's Restart=on-failure then
restarts the daemon).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from panoseti_appliance.config import (
    ApplianceConfig,
    ConfigError,
    add_config_argument,
    load_config_from_args,
    render_problems,
)
from panoseti_appliance.config.models import AccessConfig, LoggingConfig
from panoseti_appliance.runtime.access import WriteGuard, server_credentials
from panoseti_appliance.runtime.inherited import Inherited
from panoseti_appliance.runtime.listen import GrpcListeners, ListenError
from panoseti_appliance.runtime.logs import report_startup_failure, setup_logging
from panoseti_appliance.runtime.notify import Notifier, watchdog_period
from panoseti_appliance.runtime.supervisor import Policy, Supervisor

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from panoseti_appliance.runtime.metrics import MetricsEndpoint

log = logging.getLogger(__name__)

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
#: How often health and STATUS= are re-evaluated (and at once on a change the service reports).
CHECK_INTERVAL = 1.0
#: Seconds each shutdown step may take (the gRPC server's gets the grace period on top).
STOP_STEP_TIMEOUT = 5.0


class Service(Protocol):
    """What the runner needs from a daemon (DaqData, UbloxControl)."""

    #: Full names of the gRPC services it adds (reflection, per-service health).
    grpc_services: tuple[str, ...]
    #: The setting holding its listen addresses, for messages ("daqdata.listen").
    listen_setting: str
    listen_addresses: list[str]
    #: Seconds in-flight RPCs get on shutdown.
    shutdown_grace: float
    #: Extra gRPC server options (its message size limits).
    grpc_options: list[tuple[str, int]]
    #: Its Prometheus endpoint (HOST:PORT), or None for none.
    metrics_listen: str | None

    def register(self, server: grpc.aio.Server) -> None:
        """Add its servicers to the (not yet started) server."""

    async def open(self, inherited: Inherited) -> None:
        """Bind or adopt its own sockets (not gRPC's); raise ListenError if one is unusable."""

    async def start(self, runtime: Runtime) -> None:
        """Start its work; return once it is up (READY=1 follows)."""

    def problems(self) -> list[str]:
        """What keeps it from serving fully right now (health NOT_SERVING); [] when fine."""

    def wedged(self) -> str | None:
        """Why it can no longer recover by itself (the watchdog then stops), or None."""

    def status(self) -> str:
        """A one-line summary for STATUS= (systemctl status)."""

    def collect(self) -> Iterable[Metric]:
        """Its Prometheus metrics as they stand (called from the endpoint's thread at a scrape)."""

    async def stop(self) -> None:
        """Shutdown, first part: end streams, stop work (the server still runs)."""

    async def close(self) -> None:
        """Shutdown, last part: release what it holds (after the server stopped)."""


@dataclass
class Runtime:
    """What a running service gets from the runner."""

    supervisor: Supervisor
    health: health.aio.HealthServicer
    #: Ask for health and STATUS to be re-evaluated now (state changed).
    changed: Callable[[], None]
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    def set_health(self, service: str, serving: bool) -> None:
        """Set one service's health from sync code (the update itself is async)."""
        task = asyncio.get_running_loop().create_task(
            self.health.set(service, SERVING if serving else NOT_SERVING)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


@dataclass(eq=False)
class Monitor:
    """Keeps overall health and STATUS= in step with the problems of the service and its tasks."""

    service: Service
    supervisor: Supervisor
    listeners: GrpcListeners
    health: health.aio.HealthServicer
    notifier: Notifier
    current: list[str] | None = field(default=None, init=False)
    _sent: str | None = field(default=None, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    stopping: bool = field(default=False, init=False)

    def problems(self) -> list[str]:
        found = [*self.supervisor.problems(), *self.service.problems()]
        if not self.listeners.serving():
            found.append(f"a socket of {self.listeners.what} passed by systemd is no longer served")
        return found

    def status_line(self, problems: list[str]) -> str:
        line = self.service.status()
        return f"{line}; PROBLEM: {'; '.join(problems)}" if problems else line

    def refresh(self) -> None:
        self._wake.set()

    async def apply(self) -> None:
        """Health from the problems now; STATUS= whenever its line changed."""
        if self.stopping:
            return
        problems = self.problems()
        if problems != self.current:
            if problems:
                log.error("not serving fully: %s", "; ".join(problems))
            elif self.current:
                log.info("serving again")
            self.current = problems
            await self.health.set("", NOT_SERVING if problems else SERVING)
        line = self.status_line(problems)
        if line != self._sent:
            self.notifier.status(line)
            self._sent = line

    async def run(self) -> None:
        """Re-evaluate every CHECK_INTERVAL, and at once when something says it changed."""
        while True:
            await self.apply()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), CHECK_INTERVAL)


async def ping_watchdog(
    notifier: Notifier, period: float, wedged: Callable[[], str | None]
) -> None:
    """Ping every `period` seconds from the event loop while nothing is wedged.

    A loop that blocks stops the pings by itself; a wedged service stops them on purpose, and
    systemd (WatchdogSec=) kills and restarts the daemon.
    """
    withheld: str | None = None
    while True:
        reason = wedged()
        if reason is None:
            notifier.watchdog()
        elif reason != withheld:
            log.error("withholding the watchdog ping: %s", reason)
        withheld = reason
        await asyncio.sleep(period)


class Runner:
    """One service's life: `start`, then `wait` for a stop request or a fatal failure, `stop`.

    `serve` runs it as a daemon; tests run it in-process the same way.
    """

    def __init__(
        self,
        service: Service,
        inherited: Inherited | None = None,
        access: AccessConfig | None = None,
    ) -> None:
        self.service = service
        self.inherited = inherited if inherited is not None else Inherited()
        self.notifier = Notifier()
        access = access if access is not None else AccessConfig()
        self.listeners = GrpcListeners(
            service.listen_setting,
            service.listen_addresses,
            credentials=server_credentials(access.tls),
        )
        self.server = grpc.aio.server(
            options=[("grpc.so_reuseport", 0), *service.grpc_options],
            interceptors=[WriteGuard(access, self.listeners.relayed)],
        )
        self.health = health.aio.HealthServicer()
        self.supervisor = Supervisor()
        self.monitor = Monitor(service, self.supervisor, self.listeners, self.health, self.notifier)
        self.supervisor.on_change = self.monitor.refresh
        self.stop_requested = asyncio.Event()
        self.metrics: MetricsEndpoint | None = None

    async def start(self) -> None:
        """Listen, start the service's work, then READY=1. ListenError leaves nothing running."""
        service = self.service
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        service.register(self.server)
        reflection.enable_server_reflection(
            (*service.grpc_services, HEALTH_SERVICE, reflection.SERVICE_NAME), self.server
        )
        try:
            self.listeners.open(self.server, self.inherited)
            await service.open(self.inherited)
            self._open_metrics()
        except ListenError:
            await self.listeners.close()
            await service.close()
            raise
        for passed in self.inherited.close_unclaimed():
            log.warning("closed %s: nothing in the configuration uses it", passed.describe())
        for name in ("", *service.grpc_services):
            await self.health.set(name, NOT_SERVING)
        await self.server.start()
        await self.listeners.start()
        log.info("listening on %s", ", ".join(service.listen_addresses))
        runtime = Runtime(self.supervisor, self.health, self.monitor.refresh)
        await service.start(runtime)
        await self.monitor.apply()
        self.notifier.ready(self.monitor.status_line(self.monitor.current or []))
        self.supervisor.spawn("monitor", self.monitor.run, Policy.EXIT)
        period = watchdog_period()
        if period is not None:
            notifier, wedged = self.notifier, service.wedged
            self.supervisor.spawn(
                "watchdog", lambda: ping_watchdog(notifier, period, wedged), Policy.EXIT
            )

    async def wait(self) -> int:
        """Until a stop is requested (0) or a supervised task cannot be kept running (70)."""
        loop = asyncio.get_running_loop()
        waiters = [
            loop.create_task(self.stop_requested.wait()),
            loop.create_task(self.supervisor.fatal.wait()),
        ]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        return 0 if self.stop_requested.is_set() else os.EX_SOFTWARE

    async def stop(self) -> None:
        """Graceful shutdown, in the order the module docstring gives.

        Each step has a time limit (`bounded_step`): one that hangs is logged by name and left
        behind, so the daemon still exits and systemd never has to kill it.
        """
        log.info("shutting down")
        self.monitor.stopping = True
        self.notifier.stopping()
        grace = self.service.shutdown_grace
        await bounded_step("health", self.health.enter_graceful_shutdown())
        await bounded_step("ending the service's streams", self.service.stop())
        await bounded_step("stopping the gRPC server", self.server.stop(grace), grace)
        await bounded_step("cancelling supervised tasks", self.supervisor.stop())
        await bounded_step("closing the listeners", self.listeners.close())
        await bounded_step("releasing the service's resources", self.service.close())
        if self.metrics is not None:
            await bounded_step(
                "closing the metrics endpoint", asyncio.to_thread(self.metrics.close)
            )

    def _open_metrics(self) -> None:
        address = self.service.metrics_listen
        if address is None:
            return
        # Imported only when configured: a daemon without metrics never loads prometheus-client.
        from panoseti_appliance.runtime.metrics import MetricsEndpoint

        section = self.service.listen_setting.rpartition(".")[0]
        self.metrics = MetricsEndpoint(address, f"{section}.metrics_listen", self.service)
        self.metrics.open()
        log.info("metrics on http://%s/metrics", address)


async def bounded_step(name: str, step: Awaitable[object], extra: float = 0.0) -> None:
    """Await one shutdown step for at most STOP_STEP_TIMEOUT + `extra` seconds.

    On time-out the step is cancelled without waiting for it (a step stuck in a library, as
    grpc.aio's server.stop can be, may not even honour the cancel) and the shutdown goes on.
    """
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=STOP_STEP_TIMEOUT + extra)
    if task in done:
        task.result()
        return
    task.cancel()
    log.warning(
        "shutdown: %s did not finish within %g s; going on without it",
        name,
        STOP_STEP_TIMEOUT + extra,
    )


def exit_now(code: int) -> NoReturn:
    """End the process at once, logs flushed, without tearing the interpreter down.

    Everything is stopped and handed over by now, and a restarted daemon waits for this process
    to end (its producers unread meanwhile): finishing the event loop and the interpreter (grpc's
    objects and threads) would only delay it.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def serve(service: Service, inherited: Inherited, access: AccessConfig) -> int:
    """Run `service` until SIGTERM/SIGINT (exit 0) or until a task cannot be kept running (70).

    Returns only when it could not start (69, 70); otherwise it ends the process (`exit_now`).
    """
    runner = Runner(service, inherited, access)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop_requested.set)
    try:
        await runner.start()
    except ListenError as exc:
        log.error("%s", exc)
        return os.EX_UNAVAILABLE
    except Exception:
        log.exception("start-up failed")
        await runner.stop()
        return os.EX_SOFTWARE
    code = await runner.wait()
    await runner.stop()
    exit_now(code)


def run(
    program: str,
    description: str,
    create: Callable[[ApplianceConfig], Service],
    argv: Sequence[str] | None = None,
    inherited: Inherited | None = None,
) -> int:
    """A daemon's main(): parse the command line, load the configuration, serve, exit.

    Returns only for a configuration problem (78); otherwise the process exits with the code.

    `create` builds the service from the configuration and may raise ConfigError for checks of
    its own (they exit 78 like any configuration problem).
    """
    passed = inherited if inherited is not None else Inherited.from_environment()
    parser = argparse.ArgumentParser(prog=program, description=description)
    add_config_argument(parser)
    args = parser.parse_args(argv)
    setup_logging(LoggingConfig(), program)  # until the configured one is known
    try:
        config = load_config_from_args(args)
        setup_logging(config.logging, program)
        service = create(config)
    except ConfigError as err:
        report_startup_failure(program, render_problems(err))
        passed.close_unclaimed()
        return os.EX_CONFIG
    try:
        code = asyncio.run(serve(service, passed, config.access))
    except Exception:
        log.exception("%s failed", program)
        code = os.EX_SOFTWARE
    exit_now(code)
