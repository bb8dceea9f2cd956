"""hp_io: the ingestion engine InitHpIo configures (docs/daqdata.md, "InitHpIo").

A small state machine, IDLE → STARTING → RUNNING → STOPPING → IDLE, that starts and stops the
enabled sources and the simulator in this order and within these bounds:

- start: filesystem simulators first (the first scan needs files), then every enabled source
  until each says it is listening or watching, then the uds/rpc simulators; bounded by
  `hp_io_start_timeout`. It never waits for a first frame.
- stop: sources, then the simulator (which deletes what it created); bounded by
  `hp_io_stop_timeout`, after which the remaining tasks are abandoned cancelled. The hub's
  newest-frame table is cleared, so no frame of the old configuration is ever served.

The Hashpipe listener is not started or stopped here: its sockets live for the daemon's lifetime
(Hashpipe may connect at any time). Its frames pass through `uds_sink`, which keeps them only
while the running configuration ingests from uds and the module passes the filter.

Its tasks belong to the daemon's supervisor. When a running configuration fails on its own (a
source or the simulator died), hp_io stops it, ends the streams with the reason, and starts the
same configuration again after `daqdata.hp_io_restart_backoff_seconds`, until it runs or an
InitHpIo replaces it; a start from the configured defaults at boot that fails is retried alike.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panoseti_appliance.config.checks import format_module_range
from panoseti_appliance.config.models import DaqDataConfig, HpIoConfig
from panoseti_appliance.daqdata.server.frame import Frame
from panoseti_appliance.daqdata.server.hub import Hub
from panoseti_appliance.daqdata.server.sources.base import Source, SourceError, SourceStats
from panoseti_appliance.daqdata.server.sources.hashpipe import HashpipeListener
from panoseti_appliance.daqdata.server.sources.pipe import FilesystemPipeSource
from panoseti_appliance.daqdata.server.sources.poll import FilesystemPollSource
from panoseti_appliance.daqdata.sim.simulator import Simulator, SimulatorError
from panoseti_appliance.retry import RetryPolicy
from panoseti_appliance.runtime.bounded import bounded, quote
from panoseti_appliance.runtime.supervisor import Policy, Supervised, Supervisor

log = logging.getLogger(__name__)


class HpIoState(enum.Enum):
    IDLE = "IDLE"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"


@dataclass(frozen=True)
class HpIoSettings:
    """One validated InitHpIo payload (what hp_io runs with).

    `data_dir` is absolute (the configuration and InitHpIo refuse a relative one) unless
    simulating, when the simulator's directory replaces it.
    """

    data_dir: Path
    update_interval_seconds: float
    simulate_daq: bool = False
    module_ids: frozenset[int] = frozenset()

    @classmethod
    def from_config(cls, cfg: HpIoConfig) -> HpIoSettings:
        return cls(
            cfg.data_dir, cfg.update_interval_seconds, cfg.simulate_daq, frozenset(cfg.module_ids)
        )

    def describe(self) -> str:
        modules = bounded(format_module_range(self.module_ids), 200) or "all"
        where = "simulator" if self.simulate_daq else quote(str(self.data_dir), 300)
        return f"{where}, interval {self.update_interval_seconds:g}s, modules {modules}"


_RUNNING = (HpIoState.RUNNING,)
_STARTING_OR_RUNNING = (HpIoState.STARTING, HpIoState.RUNNING)


class HpIoStartError(Exception):
    """hp_io could not start; str(err) is the reason InitHpIo reports in error_message."""


def rpc_target(cfg: DaqDataConfig) -> str | None:
    """Where the rpc simulator uploads: its own target, else this daemon's unix listener."""
    return cfg.simulator.rpc_target or cfg.unix_listen_address()


class HpIo:
    """The running ingestion configuration: its sources, simulator and state."""

    def __init__(self, cfg: DaqDataConfig, hub: Hub, listener: HashpipeListener | None) -> None:
        self.cfg = cfg
        self.hub = hub
        self.listener = listener
        self.state = HpIoState.IDLE
        self.settings: HpIoSettings | None = None
        #: One InitHpIo (or failure clean-up) at a time; asyncio.Lock wakes waiters in FIFO order.
        self.lock = asyncio.Lock()
        #: Frames that reached hp_io but were not published, by reason.
        self.discarded: Counter[str] = Counter()
        self.sources: list[Source] = []
        self._tasks: list[Supervised] = []
        self._simulator: Simulator | None = None
        self._uds_active = False
        self._generation = 0
        self._state_listeners: list[Callable[[HpIoState], None]] = []
        self._failure_listeners: list[Callable[[str], None]] = []
        self._supervisor: Supervisor | None = None
        self._recovery: Supervised | None = None
        #: Why hp_io is down and when it starts again (None while nothing is pending).
        self.problem: str | None = None

    def attach(self, supervisor: Supervisor) -> None:
        """Run every task of hp_io under the daemon's supervisor (before the first start)."""
        self._supervisor = supervisor

    def _spawn(
        self,
        name: str,
        factory: Callable[[], Coroutine[Any, Any, None]],
        on_failure: Callable[[str], None] | None = None,
        finite: bool = False,
        policy: Policy = Policy.REPORT,
    ) -> Supervised:
        assert self._supervisor is not None, "HpIo.attach(supervisor) first"
        return self._supervisor.spawn(
            name,
            factory,
            policy,
            on_failure,
            expected=(SourceError, SimulatorError),
            finite=finite,
        )

    # ---- observers -------------------------------------------------------------------------

    def on_state(self, callback: Callable[[HpIoState], None]) -> None:
        """Call `callback(state)` on every state change (health, sd_notify STATUS)."""
        self._state_listeners.append(callback)

    def on_failure(self, callback: Callable[[str], None]) -> None:
        """Call `callback(reason)` when a running hp_io stops on its own (a source died)."""
        self._failure_listeners.append(callback)

    def _set_state(self, state: HpIoState) -> None:
        if state is self.state:
            return
        self.state = state
        log.info("hp_io %s", state.value)
        for callback in self._state_listeners:
            callback(state)

    # ---- frame intake ----------------------------------------------------------------------

    def _admit(self, frame: Frame, counter: str, live: tuple[HpIoState, ...] = _RUNNING) -> None:
        settings = self.settings
        if self.state not in live or settings is None:
            self.discarded[f"{counter}_not_running"] += 1
        elif settings.module_ids and frame.module_id not in settings.module_ids:
            self.discarded[f"{counter}_module_filtered"] += 1
        else:
            self.hub.publish(frame)

    def uds_sink(self, frame: Frame) -> None:
        """The Hashpipe listener's sink: publish only while uds is a running source."""
        if not self._uds_active:
            self.discarded["uds_not_enabled"] += 1
            return
        self._admit(frame, "uds")

    def upload_sink(self, frame: Frame) -> None:
        """UploadImages' sink: images arriving while hp_io is not RUNNING are dropped."""
        self._admit(frame, "upload")

    def _source_sink(self, frame: Frame) -> None:
        # A source's first scan delivers before it reports ready, i.e. while STARTING; those
        # frames belong to the new configuration (the hub was cleared when the old one stopped).
        self._admit(frame, "source", _STARTING_OR_RUNNING)

    # ---- start / stop ----------------------------------------------------------------------

    async def start(self, settings: HpIoSettings) -> None:
        """IDLE → STARTING → RUNNING; on failure everything started is stopped again (IDLE).

        Call with `lock` held. Raises HpIoStartError with the reason.
        """
        assert self.state is HpIoState.IDLE, self.state
        self._set_state(HpIoState.STARTING)
        self.settings = settings
        self._generation += 1
        try:
            async with asyncio.timeout(self.cfg.hp_io_start_timeout):
                await self._start(settings)
        except (SourceError, SimulatorError, OSError) as exc:
            await self._abort_start()
            raise HpIoStartError(str(exc)) from exc
        except TimeoutError:
            await self._abort_start()
            raise HpIoStartError(
                f"hp_io did not become ready within {self.cfg.hp_io_start_timeout:g}s "
                "(daqdata.hp_io_start_timeout)"
            ) from None
        except Exception as exc:
            log.exception("hp_io start failed unexpectedly")
            await self._abort_start()
            raise HpIoStartError(f"unexpected error: {exc!r}") from exc
        except BaseException:
            await self._abort_start()
            raise
        self._set_state(HpIoState.RUNNING)
        log.info("hp_io running: %s", settings.describe())

    async def _abort_start(self) -> None:
        await self._teardown()
        self.settings = None
        self._set_state(HpIoState.IDLE)

    async def _start(self, settings: HpIoSettings) -> None:
        data_dir = settings.data_dir
        simulator: Simulator | None = None
        if settings.simulate_daq:
            simulator = Simulator(
                self.cfg.simulator,
                socket_template=self.cfg.hashpipe.socket_template,
                pipe_name=self.cfg.filesystem_pipe.pipe_name,
                rpc_target=rpc_target(self.cfg),
            )
            data_dir = simulator.data_dir  # absolute when a source reads it (simulation_problem)
        rpc_only = simulator is not None and simulator.mode == "rpc"
        if simulator is not None and simulator.starts_before_sources:
            self._simulator = simulator
            await simulator.start()
        modules = settings.module_ids or None
        interval = settings.update_interval_seconds
        sources: list[Source] = []
        if not rpc_only:
            if self.cfg.filesystem_poll.enabled:
                sources.append(FilesystemPollSource(data_dir, interval, modules))
            if self.cfg.filesystem_pipe.enabled:
                pipe = self.cfg.filesystem_pipe.pipe_name
                sources.append(FilesystemPipeSource(data_dir, interval, pipe, modules))
        await self._run_sources(sources)
        if not rpc_only and self.listener is not None:
            self._uds_active = True
        if simulator is not None and not simulator.starts_before_sources:
            self._simulator = simulator
            await simulator.start()
        if simulator is not None:
            generation = self._generation
            watcher = self._spawn(
                f"simulator {simulator.mode}",
                lambda: self._watch_simulator(simulator),
                self._failed_callback(generation),
            )
            self._tasks.append(watcher)

    async def _run_sources(self, sources: list[Source]) -> None:
        """Start each source's task and wait until all are ready; SourceError if one fails."""
        self.sources = sources
        pending: list[tuple[Source, asyncio.Event, Supervised]] = []
        for source in sources:
            ready = asyncio.Event()
            handle = self._spawn(
                f"{source.name} source",
                functools.partial(source.run, self._source_sink, ready),
                self._failed_callback(self._generation),
            )
            self._tasks.append(handle)
            pending.append((source, ready, handle))
        for source, ready, handle in pending:
            task = handle.task
            assert task is not None
            waiter = asyncio.create_task(ready.wait())
            try:
                await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
            if not ready.is_set():
                exc = task.exception() if not task.cancelled() else None
                if isinstance(exc, SourceError):
                    raise exc
                raise SourceError(f"{source.name} source ended while starting: {exc!r}")
            log.info("%s source up", source.name)

    def _failed_callback(self, generation: int) -> Callable[[str], None]:
        """What a task of configuration `generation` calls when it dies (see `_fail`)."""

        def failed(reason: str) -> None:
            if generation == self._generation and self.state is HpIoState.RUNNING:
                asyncio.get_running_loop().create_task(self._fail(reason, generation))

        return failed

    async def _watch_simulator(self, simulator: Simulator) -> None:
        """Ends only if the simulator fails (which stops hp_io); reaching frame_limit does not."""
        try:
            await simulator.wait()
        except SimulatorError:
            raise
        except Exception as exc:
            raise SimulatorError(str(exc)) from exc
        log.info("simulator %s reached its frame_limit; sources keep running", simulator.mode)
        await asyncio.Event().wait()

    async def _fail(self, reason: str, generation: int) -> None:
        async with self.lock:
            if generation != self._generation or self.state is not HpIoState.RUNNING:
                return
            settings = self.settings
            for callback in self._failure_listeners:
                callback(reason)
            await self.stop()
        if settings is not None:
            self.restart_later(settings, reason)

    # ---- automatic restart ------------------------------------------------------------------

    def restart_later(self, settings: HpIoSettings, reason: str) -> None:
        """Start `settings` again after the back-off, until it runs or InitHpIo intervenes."""
        self._cancel_restart()
        generation = self._generation
        self._recovery = self._spawn(
            "hp_io restart",
            lambda: self._restart(settings, reason, generation),
            finite=True,
            policy=Policy.RESTART,
        )

    def _cancel_restart(self) -> None:
        if self._recovery is not None:
            if self._recovery.task is not asyncio.current_task():
                self._recovery.cancel()
            self._recovery = None
        self.problem = None

    async def _restart(self, settings: HpIoSettings, reason: str, generation: int) -> None:
        retry = RetryPolicy(steps=tuple(self.cfg.hp_io_restart_backoff_seconds))
        attempt = 0
        while True:
            delay = retry.next_delay(attempt)
            self.problem = f"hp_io stopped ({reason}); restarting in {delay:g} s"
            log.warning("%s", self.problem)
            await asyncio.sleep(delay)
            async with self.lock:
                if generation != self._generation or self.state is not HpIoState.IDLE:
                    break  # an InitHpIo took over meanwhile
                try:
                    await self.start(settings)
                except HpIoStartError as exc:
                    reason = str(exc)
                    generation = self._generation
                    attempt += 1
                    continue
            log.info("hp_io restarted after: %s", reason)
            break
        self._recovery = None
        self.problem = None

    async def stop(self) -> None:
        """RUNNING → STOPPING → IDLE: stop sources and simulator, clear the hub. Hold `lock`."""
        if self.state is HpIoState.IDLE:
            return
        self._set_state(HpIoState.STOPPING)  # no-op after begin_stopping
        await self._teardown()
        self.settings = None
        self._set_state(HpIoState.IDLE)

    def begin_stopping(self) -> None:
        """Enter STOPPING now (new readers are refused) before the caller ends old readers."""
        if self.state is HpIoState.RUNNING:
            self._set_state(HpIoState.STOPPING)

    async def _teardown(self) -> None:
        self._uds_active = False
        self._generation += 1
        tasks, self._tasks = self._tasks, []
        simulator, self._simulator = self._simulator, None
        try:
            async with asyncio.timeout(self.cfg.hp_io_stop_timeout):
                for handle in tasks:
                    await handle.stop()
                if simulator is not None:
                    await simulator.stop()
        except TimeoutError:
            log.warning(
                "hp_io did not stop within %gs (daqdata.hp_io_stop_timeout); abandoning it",
                self.cfg.hp_io_stop_timeout,
            )
        except SimulatorError as exc:
            log.warning("simulator clean-up failed: %s", exc)
        for source in self.sources:
            log.info("%s source down", source.name)
        self.sources = []
        self.hub.clear()

    async def reconfigure(self, settings: HpIoSettings) -> str:
        """Stop the current configuration and start `settings`; hold `lock`.

        Returns "" on success, else the error message: the reason, then whether the previous
        configuration was restored or hp_io is idle.
        """
        self._cancel_restart()
        running = self.state in (HpIoState.RUNNING, HpIoState.STOPPING)
        previous = self.settings if running else None
        await self.stop()
        try:
            await self.start(settings)
        except HpIoStartError as exc:
            reason = str(exc)
        else:
            return ""
        log.error("InitHpIo failed: %s", reason)
        if previous is not None:
            try:
                await self.start(previous)
            except HpIoStartError as exc:
                log.error("restoring the previous hp_io configuration failed: %s", exc)
            else:
                return f"{reason}; previous configuration restored"
        return f"{reason}; hp_io is idle"

    async def close(self) -> None:
        """Daemon shutdown: no more restarts; stop hp_io (the listener is the daemon's)."""
        self._cancel_restart()
        async with self.lock:
            await self.stop()

    def source_stats(self) -> dict[str, SourceStats]:
        """Counters of the Hashpipe listener and every running source, by source name."""
        out = {s.name: s.stats for s in self.sources}
        if self.listener is not None:
            out["uds"] = self.listener.stats
        return out
