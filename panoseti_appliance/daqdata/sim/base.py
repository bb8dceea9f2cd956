"""What every simulator emitter shares: the Emitter protocol and per-data-product counters.

An emitter delivers frames the way one producer does (files, a FIFO, Hashpipe sockets, an
UploadImages stream). Delivery problems are counted, never raised mid-run, because the real
producers drop frames too (a busy socket, no reader on a FIFO) and keep going.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

from panoseti_appliance.products import DataProduct

#: The counter every successfully delivered frame increments.
SENT = "sent"


class SimulatorError(Exception):
    """The simulator cannot start; str(err) is the reason InitHpIo reports (file, what is wrong)."""


class SimStats:
    """Monotonic counters per data product: "sent" plus one key per drop reason."""

    def __init__(self) -> None:
        self._counts: dict[str, Counter[str]] = {}

    def add(self, dp: str, key: str, n: int = 1) -> None:
        self._counts.setdefault(dp, Counter())[key] += n

    def get(self, dp: str, key: str) -> int:
        return self._counts.get(dp, Counter())[key]

    def snapshot(self) -> dict[str, dict[str, int]]:
        """A copy, sorted by product and key (for status lines, logs and tests)."""
        return {dp: dict(sorted(c.items())) for dp, c in sorted(self._counts.items())}

    def status_line(self) -> str:
        """One line such as `img16 sent=120 busy=2 | ph256 sent=122`."""
        parts = []
        for dp, counts in self.snapshot().items():
            sent = counts.get(SENT, 0)
            rest = " ".join(f"{k}={v}" for k, v in counts.items() if k != SENT)
            parts.append(f"{dp} sent={sent}" + (f" {rest}" if rest else ""))
        return " | ".join(parts) if parts else "nothing emitted yet"


class Emitter(Protocol):
    """One way of delivering simulated frames to the DaqData daemon."""

    stats: SimStats

    async def open(self) -> None:
        """Prepare (directories, FIFOs, connections); raise SimulatorError when impossible."""

    async def emit(
        self, module_id: int, dp: DataProduct, header: dict[str, Any], pixels: bytes, step: int
    ) -> None:
        """Deliver one frame of `module_id`; `step` is the simulator's step number n."""

    async def close(self) -> None:
        """Stop delivering and remove everything `open` and `emit` created."""
