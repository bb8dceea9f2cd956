"""The runner's supervision, in-process with the real DaqData service: a task that fails, a
listener that dies, and what health, STATUS= and the watchdog then say.

A failure no client can cause is injected into the real daemon (the accept loop raises once; a
listening socket is closed under it), as the INTERNAL test in test_daqdata_inprocess.py does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from panoseti_appliance.config import load_config
from panoseti_appliance.daqdata.server.daemon import DaqDataService
from panoseti_appliance.daqdata.server.sources.hashpipe import HashpipeListener
from panoseti_appliance.runtime import runner as runner_module
from panoseti_appliance.runtime.runner import Runner
from tests.activation import NotifyListener
from tests.daemons import free_tcp_port
from tests.integration.test_daqdata_support import settings_for
from tests.producers import until

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyListener]:
    """NOTIFY_SOCKET and a 0.2 s watchdog for the in-process daemon."""
    listener = NotifyListener(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", listener.path)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.setattr(runner_module, "CHECK_INTERVAL", 0.05)
    yield listener
    listener.close()


@contextlib.asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[tuple[DaqDataService, Runner]]:
    empty = tmp_path / "panoseti.yaml"
    empty.write_text("{}\n")
    config = load_config(empty, settings_for(tmp_path, free_tcp_port()), environ={})
    service = DaqDataService(config)
    runner = Runner(service)
    await runner.start()
    try:
        yield service, runner
    finally:
        await runner.stop()


async def _health(runner: Runner, service: str = "") -> int:
    # In process, without a call: HealthServicer.Check reads no context.
    request = health_pb2.HealthCheckRequest(service=service)
    reply = await runner.health.Check(request, None)  # type: ignore[arg-type]
    return int(reply.status)


def _statuses(notify: NotifyListener) -> list[str]:
    return [m["STATUS"] for m in list(notify.messages) if "STATUS" in m]


async def test_a_failed_task_is_reported_and_restarted(
    tmp_path: Path,
    notify: NotifyListener,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_accept = HashpipeListener._accept_loop
    calls = 0

    async def accept_that_fails_once(self: HashpipeListener, *args: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected bug")
        await real_accept(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(HashpipeListener, "_accept_loop", accept_that_fails_once)
    caplog.set_level(logging.INFO, logger="panoseti_appliance")
    async with running(tmp_path) as (_, runner):
        await until(
            lambda: any("PROBLEM: hashpipe listener failed" in s for s in _statuses(notify)),
            "STATUS= to name the failed task",
        )
        assert await _health(runner) == NOT_SERVING
        # Restarted after the first back-off (1 s): serving again, and STATUS says so.
        await until(lambda: not runner.supervisor.problems(), "the restart")
        await until(lambda: runner.monitor.current == [], "health to follow")
        assert await _health(runner) == SERVING
        assert _statuses(notify)[-1].startswith("hp_io RUNNING; ")
    failed = [
        r for r in caplog.records if r.getMessage().startswith("task hashpipe listener failed")
    ]
    assert len(failed) == 1
    assert failed[0].levelno == logging.ERROR
    assert failed[0].exc_info is not None  # its traceback, once
    problem = next(s for s in _statuses(notify) if "PROBLEM" in s)
    assert problem.endswith(
        "PROBLEM: hashpipe listener failed (RuntimeError: injected bug); restarting in 1 s"
    )


async def test_a_dead_listener_stops_the_watchdog(
    tmp_path: Path, notify: NotifyListener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="panoseti_appliance.runtime.runner")
    async with running(tmp_path) as (service, _):
        await asyncio.to_thread(notify.wait_for, "WATCHDOG", "1")
        assert service.listener is not None
        sock = service.listener.listening_sockets()["ph256"]
        sock.close()  # the listener can take no more producers, and nothing inside notices
        await until(
            lambda: any("withholding" in r.getMessage() for r in caplog.records), "the gate"
        )
        await asyncio.sleep(0.2)  # a ping sent just before the gate closed may still be in flight
        pings = sum(1 for m in list(notify.messages) if m.get("WATCHDOG") == "1")
        await asyncio.sleep(1.0)  # five watchdog periods
        assert sum(1 for m in list(notify.messages) if m.get("WATCHDOG") == "1") == pings
    (line,) = [r.getMessage() for r in caplog.records if "withholding" in r.getMessage()]
    assert line.startswith("withholding the watchdog ping: the Hashpipe socket for ph256 (")
    assert line.endswith(") is closed")


async def test_a_hung_shutdown_step_does_not_keep_the_daemon_from_exiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="panoseti_appliance.runtime.runner")
    monkeypatch.setattr(runner_module, "STOP_STEP_TIMEOUT", 0.3)
    released = asyncio.Event()
    closed = False

    async def stop_that_hangs(self: DaqDataService) -> None:
        while not released.is_set():  # deaf to cancellation, as a stuck library call can be
            with contextlib.suppress(asyncio.CancelledError):
                await released.wait()

    real_close = DaqDataService.close

    async def close(self: DaqDataService) -> None:
        nonlocal closed
        await real_close(self)
        closed = True

    monkeypatch.setattr(DaqDataService, "stop", stop_that_hangs)
    monkeypatch.setattr(DaqDataService, "close", close)
    loop = asyncio.get_running_loop()
    try:
        async with running(tmp_path):
            started = loop.time()
        took = loop.time() - started
    finally:
        released.set()
        await asyncio.sleep(0)
    assert took < 0.3 + 0.3 + 5.0  # the hung step's limit, the server's, the other steps' work
    assert closed, "the steps after the hung one still ran"
    (line,) = [r.getMessage() for r in caplog.records if "did not finish" in r.getMessage()]
    assert line == (
        "shutdown: ending the service's streams did not finish within 0.3 s; going on without it"
    )
