"""Soak: DaqData at 1 kHz with 20 streaming clients, watched through its Prometheus endpoint.

Command (from the repository root; 30 minutes by default):

    .venv/bin/python bench/bench_soak.py [--minutes 30] [--clients 20] [--modules 4] \\
        [--warmup 60] [--sample 15]

It starts the real `panoseti-daqdata` with its uds simulator producing img16 and ph256 frames for
`--modules` modules every 1 ms (the Hashpipe socket path, everything under a temporary directory)
and `metrics_listen` on a free loopback port; `--clients` StreamImages calls (movie and PH, at
0.01 s) read for the whole run. Every `--sample` seconds it scrapes /metrics: RSS
(process_resident_memory_bytes), open descriptors (process_open_fds) and frames published. After
the warm-up, RSS and descriptors must stay flat (growth under 5 % from the first sample after
warm-up to the last), no stream may end, and the daemon's log must hold no ERROR and no
traceback. It prints one JSON object with the figures and exits 1 if a condition fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.node import scrape
from bench.proc import growth
from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from tests.daemons import free_tcp_port, start_daemon
from tests.integration.test_client_daemon import daqdata_settings

#: Largest growth allowed after warm-up, as a fraction (the issue's "flat": under 5 %).
FLAT = 0.05


class Reader(threading.Thread):
    """One StreamImages call, counting responses until stopped; remembers how it ended."""

    def __init__(self, target: str) -> None:
        super().__init__(daemon=True)
        self.channel = grpc.insecure_channel(target)
        self.call = pb_grpc.DaqDataStub(self.channel).StreamImages(
            pb.StreamImagesRequest(
                stream_movie_data=True, stream_pulse_height_data=True, update_interval_seconds=0.01
            )
        )
        self.responses = 0
        self.ended: str | None = None

    def run(self) -> None:
        try:
            for _ in self.call:
                self.responses += 1
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.ended = f"{exc.code().name}: {exc.details()}"

    def stop(self) -> None:
        self.call.cancel()
        self.join(timeout=10)
        self.channel.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--modules", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline")
    parser.add_argument("--sample", type=float, default=15.0, help="seconds between scrapes")
    args = parser.parse_args()
    metrics_port = free_tcp_port()
    with tempfile.TemporaryDirectory(prefix="panoseti-soak-") as tmp:
        port = free_tcp_port()
        settings = daqdata_settings(
            Path(tmp),
            port,
            list(range(1, args.modules + 1)),
            True,
            metrics_listen=f"127.0.0.1:{metrics_port}",
            max_concurrent_rpcs=args.clients + 10,
            max_streams_per_peer=args.clients + 10,
        )
        settings["daqdata"]["simulator"]["update_interval_seconds"] = 0.001  # 1 kHz per module
        settings["hp_io"]["update_interval_seconds"] = 0.001
        daemon = start_daemon("panoseti-daqdata", Path(tmp), settings, f"127.0.0.1:{port}")
        readers: list[Reader] = []
        try:
            readers = [Reader(daemon.target) for _ in range(args.clients)]
            for reader in readers:
                reader.start()
            started = time.monotonic()
            samples: list[dict[str, Any]] = []
            while (elapsed := time.monotonic() - started) < args.minutes * 60:
                time.sleep(min(args.sample, args.minutes * 60 - elapsed))
                sample = scrape(metrics_port)
                sample["t"] = round(time.monotonic() - started, 1)
                samples.append(sample)
            log = daemon.log()
        finally:
            for reader in readers:
                reader.stop()
            daemon.stop(check=False)
    after = [s for s in samples if s["t"] >= args.warmup] or samples[-1:]
    first, last = after[0], after[-1]
    span = last["t"] - samples[0]["t"] or 1.0
    result = {
        "minutes": args.minutes,
        "clients": args.clients,
        "modules": args.modules,
        "frames_published_per_s": round(
            (last["frames_published_total"] - samples[0]["frames_published_total"]) / span
        ),
        "responses_per_client_per_s": round(
            sum(r.responses for r in readers) / len(readers) / (args.minutes * 60), 1
        ),
        "rss_mib": [
            round(first["process_resident_memory_bytes"] / 2**20, 1),
            round(last["process_resident_memory_bytes"] / 2**20, 1),
        ],
        "rss_growth": round(
            growth(first["process_resident_memory_bytes"], last["process_resident_memory_bytes"]), 4
        ),
        "fds": [first["process_open_fds"], last["process_open_fds"]],
        "fd_growth": round(growth(first["process_open_fds"], last["process_open_fds"]), 4),
        "streams_ended": [r.ended for r in readers if r.ended],
        "error_lines": [line for line in log.splitlines() if " ERROR " in line][:5],
        "tracebacks": log.count("Traceback"),
    }
    print(json.dumps(result, indent=1))
    ok = (
        result["rss_growth"] < FLAT
        and result["fd_growth"] < FLAT
        and not result["streams_ended"]
        and not result["error_lines"]
        and not result["tracebacks"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
