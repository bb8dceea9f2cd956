"""How long to wait before trying again: one policy for every retry loop of the appliance.

The DaqData and UbloxControl clients re-subscribe to a daemon that restarted, the UbloxControl
daemon re-initialises a receiver that is not ready yet, and both daemons restart a failed task
(the supervisor) or a stopped hp_io. They all wait the same way
(a delay that grows to a cap, optionally spread by jitter so that many clients of one restarted
daemon do not come back in the same instant, optionally giving up after some attempts) and
differ only in their numbers, so each passes its own `RetryPolicy`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_RNG = random.Random()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delays between attempts: `initial`, times `factor` after each failure, up to `max_delay`.

    `steps`, when given, replaces that progression with a hand-picked schedule whose last entry
    repeats (round numbers an operator can read in a log, such as 1, 2, 5, 10 s). `jitter` is
    the fraction by which each delay is spread at random (0.1: ±10 %), never beyond the cap.
    `max_attempts` (None: never) is how many attempts in a row may fail before giving up.
    """

    initial: float = 0.2
    factor: float = 2.0
    max_delay: float = 4.0
    jitter: float = 0.0
    max_attempts: int | None = None
    steps: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.max_delay:
            raise ValueError(f"RetryPolicy needs 0 < initial <= max_delay, got {self}")
        if self.factor < 1:
            raise ValueError(f"RetryPolicy factor must be at least 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"RetryPolicy jitter must be within 0..1, got {self.jitter}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"RetryPolicy max_attempts must be None or >= 1, not {self}")
        if any(step <= 0 for step in self.steps):
            raise ValueError(f"RetryPolicy steps must all be positive, got {self.steps}")

    @property
    def ceiling(self) -> float:
        """The longest delay: the one that repeats once the back-off has grown to its cap."""
        return self.steps[-1] if self.steps else self.max_delay

    def base_delay(self, attempt: int) -> float:
        """The delay before retry number `attempt` (0 for the first retry), without jitter."""
        if self.steps:
            return self.steps[min(attempt, len(self.steps) - 1)]
        delay = self.initial
        for _ in range(attempt):  # multiplied step by step: no float overflow for long outages
            if delay >= self.max_delay or self.factor == 1:
                break
            delay *= self.factor
        return min(delay, self.max_delay)

    def next_delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay before retry number `attempt`, with this policy's jitter applied."""
        delay = self.base_delay(attempt)
        if not self.jitter:
            return delay
        spread = (rng or _RNG).uniform(1 - self.jitter, 1 + self.jitter)
        return min(delay * spread, self.ceiling)

    def exhausted(self, failures: int) -> bool:
        """Whether `failures` failed attempts in a row mean giving up."""
        return self.max_attempts is not None and failures >= self.max_attempts
