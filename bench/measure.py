"""One measured run: readers subscribe, producers start, a window is measured, all is stopped.

The order makes the figures exact: every reader's stream is open (the daemon says so) before
any producer writes, the window opens once the producers have run for a settling moment, and
after the producers stop the readers may drain what the daemon still queues for them (so an
every-frame reader's images plus its lost frames can be checked against what was published).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench.feeds import HashpipeLoad, UploadPlan, produce_hashpipe, upload
from bench.loads import Loads, counters
from bench.node import Node, deltas
from bench.proc import cpu_seconds, open_fds, rss_bytes
from bench.readers import SLOTS, ReadPlan, read

#: Seconds producers run before the window opens.
SETTLE = 0.5
#: A draining reader is done when its counts have not moved for this long.
DRAIN_QUIET = 0.5
DRAIN_LIMIT = 20.0


@dataclass
class Window:
    """What one run measured. `counts` are the shared counters' growth over the window, `final`
    their values at the end (after draining); `metrics` the daemon's counters' growth over the
    window, `totals` over the whole run."""

    seconds: float
    cpu: float
    metrics: dict[str, float]
    totals: dict[str, float]
    counts: list[int]
    final: list[int]
    plans: list[ReadPlan]
    reader_results: list[Any]
    producer_results: list[Any]
    samples: list[dict[str, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def streams(self, counts: list[int] | None = None) -> list[tuple[int, int, int]]:
        """(responses, images, frames lost) of every stream, readers in order."""
        c = self.counts if counts is None else counts
        total = sum(p.streams for p in self.plans)
        return [(c[i * SLOTS], c[i * SLOTS + 1], c[i * SLOTS + 2]) for i in range(total)]

    def per_s(self, value: float) -> float:
        return value / self.seconds if self.seconds else 0.0

    @property
    def cpu_percent(self) -> float:
        """The daemon's CPU over the window, in % of one core."""
        return 100 * self.per_s(self.cpu)


def _sample(node: Node, t0: float) -> dict[str, float]:
    return {
        "t": round(time.monotonic() - t0, 1),
        "rss_bytes": float(rss_bytes(node.pid)),
        "fds": float(open_fds(node.pid)),
    }


def _wait_quiet(shared: Any, limit: float) -> None:
    deadline = time.monotonic() + limit
    last = list(shared)
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = list(shared)
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= DRAIN_QUIET:
            return


def run_loads(
    node: Node,
    readers: list[ReadPlan],
    producers: list[HashpipeLoad | UploadPlan],
    seconds: float,
    *,
    drain: bool = False,
    sample_every: float = 0.0,
) -> Window:
    """Measure the daemon for `seconds` under these readers and producers.

    `sample_every` > 0 also records the daemon's RSS and descriptors that often."""
    reader_slots = sum(p.streams for p in readers) * SLOTS
    shared = counters(reader_slots + len(producers))
    reading, producing = Loads(), Loads()
    try:
        first = 0
        for plan in readers:
            reading.start(read, node.target, plan, shared, first)
            first += plan.streams * SLOTS
        node.wait_streams(sum(p.streams for p in readers))
        for slot, load in enumerate(producers, start=reader_slots):
            if isinstance(load, HashpipeLoad):
                paths = node.hashpipe_paths(load.products)
                producing.start(produce_hashpipe, paths, load.modules, load.rate)
            else:
                producing.start(upload, node.target, load, shared, slot)
        producing.go()
        time.sleep(SETTLE)
        t0, cpu0, m0, c0 = time.monotonic(), cpu_seconds(node.pid), node.metrics(), list(shared)
        samples: list[dict[str, float]] = []
        end = t0 + seconds
        while sample_every > 0 and time.monotonic() + sample_every < end:
            samples.append(_sample(node, t0))
            time.sleep(sample_every)
        time.sleep(max(0.0, end - time.monotonic()))
        t1, cpu1, m1, c1 = time.monotonic(), cpu_seconds(node.pid), node.metrics(), list(shared)
        if sample_every > 0:
            samples.append(_sample(node, t0))
        produced = producing.stop()
        if drain:
            _wait_quiet(shared, DRAIN_LIMIT)
        final = list(shared)
        totals = node.metrics()
        read_results = reading.stop()
    finally:
        producing.close()
        reading.close()
    problems = node.problems()
    for result in read_results:
        problems += [f"stream ended: {e}" for e in result["errors"]]
    for result in produced:
        if isinstance(result, dict) and result.get("error"):
            problems.append(f"upload ended: {result['error']}")
    return Window(
        seconds=t1 - t0,
        cpu=cpu1 - cpu0,
        metrics=deltas(m0, m1),
        totals=totals,
        counts=[b - a for a, b in zip(c0, c1, strict=True)],
        final=final,
        plans=readers,
        reader_results=read_results,
        producer_results=produced,
        samples=samples,
        problems=problems,
    )
