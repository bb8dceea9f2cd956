"""Events per second of a growing counter, for the STATUS line (frames in, UBX messages)."""

from __future__ import annotations

import time


class Rate:
    """The rate of a counter between readings at least `window` seconds apart.

    Readings closer together return the last rate, so a burst of STATUS refreshes (one per state
    change) does not turn a steady stream into noise.
    """

    def __init__(self, window: float = 1.0) -> None:
        self.window = window
        self._last: tuple[float, int] | None = None
        self._rate = 0.0

    def update(self, count: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        if self._last is None:
            self._last = (now, count)
            return self._rate
        then, before = self._last
        if now - then >= self.window:
            self._rate = max(0, count - before) / (now - then)
            self._last = (now, count)
        return self._rate
