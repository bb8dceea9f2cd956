"""A real `panoseti-daqdata` for one benchmark run, and what it says about itself.

The daemon is started as the tests start it (tests/daemons.py: an empty config file plus
PANOSETI_* overrides, everything under a temporary directory, up once health says SERVING),
with the hp_io interval at 1 ms, room for many streams and its Prometheus endpoint on a free
loopback port. Counts that only the daemon knows (images accepted, frames published, streams
open) are read from that endpoint; its CPU, RSS and descriptors from /proc.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.daemons import free_tcp_port, start_daemon
from tests.integration.test_daqdata_support import DaqData

#: Streams one bench daemon admits, in total and per client host (every client is local).
MAX_STREAMS = 400
PREFIX = "panoseti_daqdata_"


def scrape(port: int) -> dict[str, float]:
    """Every sample of a daemon's /metrics, labelled families summed over their labels (so
    `frames_published_total` is the total of every module and product)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name.removeprefix(PREFIX)
            out[name] = out.get(name, 0.0) + sample.value
    return out


def settings(tmp: Path, port: int, metrics_port: int, **daqdata: Any) -> dict[str, Any]:
    """The bench daemon's settings; `daqdata` adds or replaces keys of the daqdata section."""
    return {
        "daqdata": {
            "listen": [f"127.0.0.1:{port}"],
            "metrics_listen": f"127.0.0.1:{metrics_port}",
            "hashpipe": {"socket_template": str(tmp / "hp_{dp}.sock")},
            "min_hp_io_update_interval_seconds": 0.001,
            "max_concurrent_rpcs": MAX_STREAMS,
            "max_streams_per_peer": MAX_STREAMS,
            **daqdata,
        },
        "hp_io": {"data_dir": str(tmp), "update_interval_seconds": 0.001},
        "logging": {"level": "warning"},
    }


@dataclass
class Node(DaqData):
    """A running bench daemon: the tests' DaqData, with its metrics endpoint."""

    metrics_port: int = 0

    @property
    def pid(self) -> int:
        return self.daemon.proc.pid

    def hashpipe_paths(self, products: tuple[str, ...]) -> dict[str, str]:
        """The Hashpipe socket of each product."""
        return {dp: self.socket_path(dp) for dp in products}

    def metrics(self) -> dict[str, float]:
        return scrape(self.metrics_port)

    def wait_streams(self, count: int, timeout: float = 30.0) -> None:
        """Wait until the daemon has exactly `count` streams open (every reader subscribed)."""
        deadline = time.monotonic() + timeout
        open_now = -1.0
        while time.monotonic() < deadline:
            open_now = self.metrics().get("streams_open", 0.0)
            if open_now == count:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{open_now:.0f} of {count} streams open after {timeout:g} s")

    def problems(self) -> list[str]:
        """ERROR lines and tracebacks in the daemon's log so far (a run with any is suspect)."""
        log = self.daemon.log()
        lines = [line for line in log.splitlines() if " ERROR " in line][:5]
        if "Traceback" in log:
            lines.append(f"{log.count('Traceback')} traceback(s) in the daemon's log")
        return lines


@contextlib.contextmanager
def running_node(**daqdata: Any) -> Iterator[Node]:
    """A bench daemon under a fresh temporary directory, stopped and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="panoseti-bench-") as name:
        tmp = Path(name)
        port, metrics_port = free_tcp_port(), free_tcp_port()
        daemon = start_daemon(
            "panoseti-daqdata",
            tmp,
            settings(tmp, port, metrics_port, **daqdata),
            f"127.0.0.1:{port}",
        )
        try:
            yield Node(daemon, tmp, port, metrics_port)
        finally:
            daemon.stop(check=False)


def deltas(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """How much each of the daemon's counters grew between two scrapes."""
    return {name: after[name] - before.get(name, 0.0) for name in after}
