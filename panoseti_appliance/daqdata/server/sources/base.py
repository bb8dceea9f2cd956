"""What every ingestion source shares: the Source protocol, its start-up error and its counters.

A source turns bytes (socket streams, files, FIFO signals) into Frames and hands them to a sink;
it never knows about clients. Bad data is counted, never raised, so one torn frame or one broken
connection can never stop ingestion.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Protocol

from panoseti_appliance.daqdata.server.frame import Frame, FrameSink


class SourceError(Exception):
    """A source cannot start; str(err) is the reason shown in InitHpIo's error_message.

    Example: "uds source ph256: /tmp/x.sock exists and is not a socket".
    """


class SourceStats:
    """Monotonic per-source counters ("frames_in", "torn", "garbage_bytes", "resyncs", …).

    A child (e.g. one Hashpipe connection) can forward every increment to its parent (the
    source), so per-connection and per-source totals come from one call site.
    """

    def __init__(self, parent: SourceStats | None = None) -> None:
        self._counts: Counter[str] = Counter()
        self._parent = parent

    def add(self, key: str, n: int = 1) -> None:
        """Count `n` more of `key` here and in every ancestor."""
        stats: SourceStats | None = self
        while stats is not None:
            stats._counts[key] += n
            stats = stats._parent

    def __getitem__(self, key: str) -> int:
        return self._counts[key]

    def snapshot(self) -> dict[str, int]:
        """A copy of the counters, sorted by name (for logs and metrics)."""
        return dict(sorted(self._counts.items()))

    def __repr__(self) -> str:
        return f"SourceStats({self.snapshot()})"


class Source(Protocol):
    """An ingestion source; the hp_io engine runs each one as a task."""

    name: str  # "filesystem_poll" | "filesystem_pipe" | "uds"
    stats: SourceStats

    async def run(self, sink: FrameSink, ready: asyncio.Event) -> None:
        """Run until cancelled. Set `ready` once listening/watching.

        Raise SourceError (before setting ready) if it cannot start. Never raise for bad data:
        count it and continue.
        """
        ...


def format_counts(counts: dict[str, int]) -> str:
    """`key=value` pairs for one log line, e.g. "frames_in=12 torn=1"."""
    return " ".join(f"{k}={v}" for k, v in counts.items()) or "nothing counted"


def deliver(sink: FrameSink, frame: Frame, stats: SourceStats, log: logging.Logger) -> None:
    """Hand one frame to the sink; a failing sink is a bug, logged with its traceback and
    counted as "sink_errors", but it must not stop the source."""
    try:
        sink(frame)
    except Exception:
        stats.add("sink_errors")
        log.exception("the frame sink failed on %s frame of module %d", frame.dp, frame.module_id)
