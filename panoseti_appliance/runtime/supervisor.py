"""Every long-running task of a daemon, owned in one place.

A supervised task that ends while it should still run has failed. The failure is logged at
ERROR with its traceback once and reported as a problem (health NOT_SERVING, the STATUS line says
which task and why); what happens next is the task's policy:

- RESTART: started again after a back-off (1, 2, 5, 10, 30 s). A run that lasted `stable_after`
  seconds resets the back-off; `give_up_after` failures in a row and the daemon exits 70 so
  systemd restarts the whole process with fresh state.
- EXIT: the daemon exits 70 at once.
- REPORT: the task's owner decides (its `on_failure` is called); used where the owner has a
  recovery of its own, e.g. hp_io restarting its whole configuration.

Cancellation through the handle, or `stop()`, is not a failure. Never a silent idle daemon: a
task cannot end without either being restarted, being handed to its owner, or ending the process.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from panoseti_appliance.retry import RetryPolicy

log = logging.getLogger(__name__)

TaskFactory = Callable[[], Coroutine[Any, Any, None]]
BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)


class Policy(enum.Enum):
    RESTART = "restart"
    EXIT = "exit"
    REPORT = "report"


def describe(exc: BaseException | None) -> str:
    """A one-line reason for a task's end (the errors inside a TaskGroup's ExceptionGroup)."""
    if exc is None:
        return "ended unexpectedly"
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(eq=False)  # a handle: compared and hashed by identity
class Supervised:
    """The handle of one supervised task (its current run, restarts included)."""

    supervisor: Supervisor
    name: str
    factory: TaskFactory
    policy: Policy
    on_failure: Callable[[str], None] | None
    expected: tuple[type[BaseException], ...] = ()
    finite: bool = False
    task: asyncio.Task[None] | None = field(default=None, init=False)
    failures: int = field(default=0, init=False)
    problem: str | None = field(default=None, init=False)
    _started: float = field(default=0.0, init=False)
    _cancelled: bool = field(default=False, init=False)
    _retry: asyncio.TimerHandle | None = field(default=None, init=False)

    def _run(self) -> None:
        self._retry = None
        self._started = time.monotonic()
        self.task = asyncio.get_running_loop().create_task(self.factory(), name=self.name)
        self.task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self._cancelled or task.cancelled():
            # Cancelled through the handle, or by the event loop shutting down: not a failure.
            self.supervisor.forget(self)
            return
        exc = task.exception()
        if exc is None and self.finite:
            self.supervisor.forget(self)  # reached its goal
            return
        self._failed(exc, None)

    def _failed(self, exc: BaseException | None, why: str | None) -> None:
        # An expected error (a source's SourceError) says all in its message; anything else is
        # a bug and its traceback is logged, once.
        known = exc is not None and isinstance(exc, self.expected)
        reason = why or (str(exc) if known and str(exc) else describe(exc))
        if time.monotonic() - self._started >= self.supervisor.stable_after:
            self.failures = 0
        self.failures += 1
        traceback = None if known or exc is None else (type(exc), exc, exc.__traceback__)
        log.error("task %s failed: %s", self.name, reason, exc_info=traceback)
        sup = self.supervisor
        if self.policy is Policy.REPORT:
            sup.forget(self)
            if self.on_failure is not None:
                self.on_failure(f"{self.name} failed: {reason}")
            return
        if self.policy is Policy.EXIT or self.failures >= sup.give_up_after:
            self.problem = f"{self.name} failed: {reason}"
            sup.die(f"task {self.name} failed {self.failures} time(s); last: {reason}")
            return
        delay = sup.retry.next_delay(self.failures - 1)
        self.problem = f"{self.name} failed ({reason}); restarting in {delay:g} s"
        log.warning("task %s: restarting in %g s (failure %d)", self.name, delay, self.failures)
        sup.changed()
        self._retry = asyncio.get_running_loop().call_later(delay, self._restart)

    def _restart(self) -> None:
        if self._cancelled:
            return
        self.problem = None
        self._run()
        self.supervisor.changed()

    def cancel(self) -> None:
        """Stop the task for good (not a failure)."""
        self._cancelled = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.task is not None:
            self.task.cancel()
        self.supervisor.forget(self)

    async def stop(self) -> None:
        """Cancel and wait for the task to finish."""
        self.cancel()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


class Supervisor:
    """Owns the daemon's tasks; `fatal` is set when one can no longer be kept running."""

    def __init__(
        self,
        *,
        backoff: Sequence[float] = BACKOFF_SECONDS,
        stable_after: float = 60.0,
        give_up_after: int = 5,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.retry = RetryPolicy(steps=tuple(backoff))
        self.stable_after = stable_after
        self.give_up_after = give_up_after
        self.on_change = on_change
        self.fatal = asyncio.Event()
        self.fatal_reason: str | None = None
        self._tasks: list[Supervised] = []

    def spawn(
        self,
        name: str,
        factory: TaskFactory,
        policy: Policy = Policy.RESTART,
        on_failure: Callable[[str], None] | None = None,
        expected: tuple[type[BaseException], ...] = (),
        finite: bool = False,
    ) -> Supervised:
        """Start `factory()` as a supervised task named `name`.

        `expected` exception types are operational failures whose message is the whole story:
        logged without a traceback and passed on as the reason. A `finite` task has a goal
        (re-open a device, restart hp_io): returning is success, not a failure.
        """
        handle = Supervised(self, name, factory, policy, on_failure, expected, finite)
        self._tasks.append(handle)
        handle._run()
        return handle

    def forget(self, handle: Supervised) -> None:
        if handle in self._tasks:
            self._tasks.remove(handle)
            self.changed()

    def changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def die(self, reason: str) -> None:
        if self.fatal_reason is None:
            self.fatal_reason = reason
            log.error("giving up: %s; exiting so the service manager restarts the daemon", reason)
        self.fatal.set()
        self.changed()

    def problems(self) -> list[str]:
        return [t.problem for t in self._tasks if t.problem is not None]

    def names(self) -> list[str]:
        return [t.name for t in self._tasks]

    async def stop(self) -> None:
        """Cancel every task and wait for them (daemon shutdown)."""
        handles, self._tasks = self._tasks, []
        for handle in handles:
            handle.cancel()
        await asyncio.gather(
            *(h.task for h in handles if h.task is not None), return_exceptions=True
        )
