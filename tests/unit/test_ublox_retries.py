"""The daemon's re-init retry policy: back-off steps and when a failure is worth a warning."""

from __future__ import annotations

from logging import DEBUG, WARNING

from panoseti_appliance.ublox.server.retries import REOPEN_RETRY_S, ReinitRetries


def test_reinit_retries_back_off_and_warn_once_per_cap_period() -> None:
    retries = ReinitRetries("/dev/ublox-f9t")
    outcomes = [retries.failed("No MON-VER response") for _ in range(len(REOPEN_RETRY_S) + 2)]
    assert [delay for delay, _, _ in outcomes] == [*REOPEN_RETRY_S, 60.0, 60.0]
    levels = [level for _, level, _ in outcomes]
    # The first failure, then silence until the wait reaches its cap, then once per cap period.
    assert levels == [WARNING] + [DEBUG] * (len(REOPEN_RETRY_S) - 2) + [WARNING] * 3
    assert outcomes[-3][2] == (
        "re-initialising F9T on /dev/ublox-f9t still failing after 6 attempts "
        "(5 since the last warning), retrying in 60 s: No MON-VER response"
    )
    assert "after 8 attempts (1 since the last warning)" in outcomes[-1][2]
    # A different reason is reported at once, whatever the wait.
    _, level, line = retries.failed("Could not connect to device /dev/ublox-f9t: busy")
    assert level == WARNING
    assert line.endswith("retrying in 60 s: Could not connect to device /dev/ublox-f9t: busy")
    assert retries.succeeded("Model ZED-F9T").startswith(
        "F9T on /dev/ublox-f9t initialised by the daemon after 10 attempts: "
    )
    assert ReinitRetries("x").succeeded("M").endswith("after 1 attempt: M")
