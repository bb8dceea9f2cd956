"""RetryPolicy: the delays of each retry loop of the appliance, their cap, jitter and limit."""

from __future__ import annotations

import random

import pytest

from panoseti_appliance.daqdata.client.rpc import RECONNECT_RETRY
from panoseti_appliance.retry import RetryPolicy
from panoseti_appliance.ublox.client.api import CAPTURE_RETRY
from panoseti_appliance.ublox.server.retries import REOPEN_RETRY


def test_delays_grow_by_the_factor_up_to_the_cap() -> None:
    policy = RetryPolicy(initial=0.5, factor=3.0, max_delay=10.0)
    assert [policy.next_delay(a) for a in range(5)] == pytest.approx([0.5, 1.5, 4.5, 10.0, 10.0])
    assert policy.ceiling == 10.0
    # A long outage stays at the cap (no float overflow however many attempts).
    assert policy.next_delay(100_000) == 10.0
    assert RetryPolicy(initial=1.0, factor=1.0, max_delay=5.0).next_delay(50) == 1.0


def test_steps_replace_the_progression_and_the_last_one_repeats() -> None:
    policy = RetryPolicy(steps=(1.0, 2.0, 5.0))
    assert [policy.next_delay(a) for a in range(5)] == [1.0, 2.0, 5.0, 5.0, 5.0]
    assert policy.ceiling == 5.0


def test_each_callers_schedule() -> None:
    """The numbers each retry loop has always used, and never gives up on."""
    reconnect = [RECONNECT_RETRY.next_delay(a) for a in range(7)]
    assert reconnect == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 4.0, 4.0])
    assert [CAPTURE_RETRY.next_delay(a) for a in range(6)] == [0.5, 1.0, 2.0, 5.0, 10.0, 10.0]
    assert [REOPEN_RETRY.next_delay(a) for a in range(7)] == [1, 2, 5, 10, 30, 60, 60]
    for policy in (RECONNECT_RETRY, CAPTURE_RETRY, REOPEN_RETRY):
        assert policy.jitter == 0
        assert not policy.exhausted(10**6)


def test_jitter_spreads_each_delay_within_its_bounds_never_past_the_cap() -> None:
    policy = RetryPolicy(initial=1.0, factor=2.0, max_delay=8.0, jitter=0.25)
    rng = random.Random(1234)
    early = [policy.next_delay(1, rng) for _ in range(500)]  # base 2 s
    assert all(1.5 <= d <= 2.5 for d in early)
    assert max(early) - min(early) > 0.5  # really spread, not a constant
    capped = [policy.next_delay(10, rng) for _ in range(500)]  # base 8 s, the cap
    assert all(6.0 <= d <= 8.0 for d in capped)
    assert min(capped) < 7.0
    assert policy.base_delay(1) == 2.0


def test_max_attempts_counts_failures_in_a_row() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.exhausted(n) for n in range(5)] == [False, False, False, True, True]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial": 0.0}, "0 < initial <= max_delay"),
        ({"initial": 5.0, "max_delay": 1.0}, "0 < initial <= max_delay"),
        ({"factor": 0.5}, "factor must be at least 1"),
        ({"jitter": 1.5}, "jitter must be within 0..1"),
        ({"max_attempts": 0}, "max_attempts must be None or >= 1"),
        ({"steps": (1.0, 0.0)}, "steps must all be positive"),
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
