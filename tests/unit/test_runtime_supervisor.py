"""The supervisor: what happens when a daemon's long-running task ends or fails."""

from __future__ import annotations

import asyncio
import logging

import pytest

from panoseti_appliance.runtime.supervisor import Policy, Supervisor
from tests.producers import until

FAST = (0.01, 0.02)


async def test_a_failed_task_is_logged_once_with_traceback_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = 0
    seen: list[list[str]] = []  # the problems at each change the supervisor reports

    def changed() -> None:
        seen.append(sup.problems())

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise KeyError("boom")
        await asyncio.Event().wait()

    sup = Supervisor(backoff=FAST, on_change=changed)
    with caplog.at_level(logging.INFO, logger="panoseti_appliance.runtime.supervisor"):
        sup.spawn("listener", flaky)
        await until(lambda: runs == 2 and not sup.problems(), "the restart")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["task listener failed: KeyError: 'boom'"]
    assert errors[0].exc_info is not None  # the traceback, once
    # Health and STATUS were asked to follow both changes: the failure, then the restart.
    assert seen == [["listener failed (KeyError: 'boom'); restarting in 0.01 s"], []]
    assert not sup.fatal.is_set()
    await sup.stop()


async def test_a_task_that_keeps_failing_ends_the_daemon() -> None:
    async def broken() -> None:
        raise OSError("socket gone")

    sup = Supervisor(backoff=FAST, give_up_after=3)
    sup.spawn("listener", broken)
    await asyncio.wait_for(sup.fatal.wait(), 10)
    assert sup.fatal_reason == "task listener failed 3 time(s); last: OSError: socket gone"
    await sup.stop()


async def test_a_returning_task_has_failed_too_and_exit_policy_is_fatal_at_once() -> None:
    async def returns() -> None:
        return None

    sup = Supervisor(backoff=FAST)
    sup.spawn("watchdog", returns, Policy.EXIT)
    await asyncio.wait_for(sup.fatal.wait(), 10)
    assert sup.fatal_reason == "task watchdog failed 1 time(s); last: ended unexpectedly"
    await sup.stop()


async def test_report_hands_an_expected_failure_to_its_owner_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reasons: list[str] = []

    async def source() -> None:
        raise ValueError("data_dir is gone")

    sup = Supervisor(backoff=FAST)
    with caplog.at_level(logging.ERROR, logger="panoseti_appliance.runtime.supervisor"):
        sup.spawn("poll source", source, Policy.REPORT, reasons.append, expected=(ValueError,))
        await until(lambda: bool(reasons), "the owner to be told")
    assert reasons == ["poll source failed: data_dir is gone"]
    assert [r.exc_info for r in caplog.records] == [None]
    assert sup.names() == []
    assert not sup.fatal.is_set()


async def test_a_finite_task_may_finish_and_cancelling_is_not_a_failure() -> None:
    async def goal() -> None:
        await asyncio.sleep(0)

    async def forever() -> None:
        await asyncio.Event().wait()

    sup = Supervisor(backoff=FAST)
    sup.spawn("reopen", goal, finite=True)
    handle = sup.spawn("status", forever)
    await until(lambda: sup.names() == ["status"], "the finite task to finish")
    await handle.stop()
    assert sup.names() == []
    assert sup.problems() == []
    assert not sup.fatal.is_set()


async def test_a_long_run_resets_the_failure_count() -> None:
    runs = 0

    async def fails_after_a_while() -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.05)
        raise RuntimeError("transient")

    # Every run lasts longer than stable_after, so no streak of failures ever builds up.
    sup = Supervisor(backoff=FAST, stable_after=0.01, give_up_after=2)
    sup.spawn("transient", fails_after_a_while)
    await until(lambda: runs >= 4, "four runs")
    assert not sup.fatal.is_set()
    await sup.stop()


def test_describe_names_the_errors_inside_a_task_group() -> None:
    from panoseti_appliance.runtime.supervisor import describe

    group = ExceptionGroup("unhandled errors in a TaskGroup", [OSError("bad fd")])
    assert describe(group) == "OSError: bad fd"
    assert (
        describe(ExceptionGroup("x", [KeyError("a"), ValueError()])) == "KeyError: 'a'; ValueError"
    )
    assert describe(None) == "ended unexpectedly"
