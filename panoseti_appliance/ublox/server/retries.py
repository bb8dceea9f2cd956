"""Back-off and log throttling for the UbloxControl daemon's own re-init attempts.

When a receiver is present but its plan keeps failing (wrong model, wrong UID, a receiver still
booting), the daemon retries by itself. Retrying at a fixed short period would flood the journal
with the same warning all night; this spaces the attempts out (with a `RetryPolicy` of round
numbers an operator can read) and says the same thing once.
"""

from __future__ import annotations

import logging

from panoseti_appliance.retry import RetryPolicy

#: Waits between automatic re-init attempts while the device is present but the plan fails; the
#: last one repeats. Short at first, so a receiver that needed a moment is back within seconds.
REOPEN_RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
REOPEN_RETRY = RetryPolicy(steps=REOPEN_RETRY_S)


class ReinitRetries:
    """Back-off and log throttling for the daemon's own re-init attempts on a present device.

    A failure is logged as a WARNING when its reason differs from the last one reported, and
    otherwise only once the wait has reached its cap (so at most once per cap period), saying how
    many attempts failed since the last warning; the rest go to DEBUG.
    """

    def __init__(self, device: str, policy: RetryPolicy = REOPEN_RETRY) -> None:
        self.device = device
        self.policy = policy
        self.attempts = 0  # failed attempts so far
        self._reported: str | None = None
        self._unreported = 0

    def failed(self, reason: str) -> tuple[float, int, str]:
        """(seconds to wait, log level, log line) for one more failed attempt."""
        delay = self.policy.next_delay(self.attempts)
        self.attempts += 1
        self._unreported += 1
        retry = f"retrying in {delay:g} s"
        if reason != self._reported:
            line = f"re-initialising F9T on {self.device} failed, {retry}: {reason}"
        elif delay >= self.policy.ceiling:
            line = (
                f"re-initialising F9T on {self.device} still failing after {self.attempts} "
                f"attempts ({self._unreported} since the last warning), {retry}: {reason}"
            )
        else:
            return delay, logging.DEBUG, f"re-init attempt {self.attempts} failed: {reason}"
        self._reported, self._unreported = reason, 0
        return delay, logging.WARNING, line

    def succeeded(self, described: str) -> str:
        """The INFO line for the attempt that worked."""
        n = self.attempts + 1
        return (
            f"F9T on {self.device} initialised by the daemon "
            f"after {n} attempt{'' if n == 1 else 's'}: {described}"
        )
