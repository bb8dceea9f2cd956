"""DaqData throughput: Hashpipe-socket ingest, fan-out to streaming clients, CPU per frame.

Command (from the repository root; about 1.5 min):

    .venv/bin/python bench/bench_daqdata.py [--seconds 10] [--modules 8] [--clients 0,1,4] \\
        [--rates 0,2500]

It starts the real `panoseti-daqdata` (empty config, hp_io interval 0.001 s, everything under a
temporary directory), then, for each producer rate and client count: one producer process
writes img16 and ph256 frames of `--modules` modules to the Hashpipe sockets, either as fast as
the daemon reads them (rate 0: blocking writes of pre-built frames, so the producer is never the
bottleneck) or paced to a rate (2500/s per dp is the original's ingest ceiling), while one
client process runs that many StreamImages calls at interval 0.001 s (movie + PH) and counts
responses without parsing them. Printed per run: frames ingested/s per data product, images/s delivered per client,
and the daemon's CPU seconds (user + system, from /proc) per 1000 ingested frames. First it
prints the cost of the shared wire form (frame.py): converting a frame once, and adding the
per-subscriber envelope, against building a response message for every subscriber; then how
long a forced InitHpIo takes, to the uds simulator and back to real mode.

Results and the comparison with the original are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.feeds import hashpipe_header, produce_hashpipe
from bench.loads import Gate
from bench.proc import cpu_seconds
from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from panoseti_appliance.products import by_name
from tests.daemons import free_tcp_port, start_daemon

PRODUCTS = ("img16", "ph256")


async def _client(target: str, counts: list[int], index: int, stop: asyncio.Event) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        call = pb_grpc.DaqDataStub(channel).StreamImages(
            pb.StreamImagesRequest(
                stream_movie_data=True, stream_pulse_height_data=True, update_interval_seconds=0.001
            )
        )
        reader = asyncio.ensure_future(_count(call, counts, index))
        await stop.wait()
        call.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def _count(call: Any, counts: list[int], index: int) -> None:
    async for _ in call:
        counts[index] += 1


def consume(target: str, clients: int, seconds: float, result: Any) -> None:
    """Run `clients` streams for `seconds`; report images received per client."""

    async def main() -> list[int]:
        counts = [0] * clients
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_client(target, counts, i, stop)) for i in range(clients)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        return counts

    result.put(asyncio.run(main()))


def run(
    target: str,
    pid: int,
    paths: Mapping[str, str],
    modules: int,
    clients: int,
    seconds: float,
    rate: float,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    gate = Gate.make()
    gate.go.set()
    produced: Any = ctx.Queue()
    consumed: Any = ctx.Queue()
    consumer = None
    if clients:
        consumer = ctx.Process(target=consume, args=(target, clients, seconds, consumed))
        consumer.start()
        time.sleep(1.0)  # let the streams connect before measuring
    producer = ctx.Process(target=produce_hashpipe, args=(paths, modules, rate, gate, produced))
    cpu0 = cpu_seconds(pid)
    t0 = time.monotonic()
    producer.start()
    time.sleep(seconds - (1.0 if clients else 0.0))
    gate.stop.set()
    sent = produced.get(timeout=60)
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(pid) - cpu0
    producer.join()
    per_client = consumed.get(timeout=60) if consumer is not None else []
    if consumer is not None:
        consumer.join()
    total = sum(sent.values())
    return {
        "clients": clients,
        "ingest_per_dp": {dp: n / elapsed for dp, n in sent.items()},
        "delivered_per_client": [n / (seconds - 1.0) for n in per_client],
        "cpu_s_per_1000_frames": cpu / (total / 1000) if total else float("nan"),
    }


def wire_costs(repeat: int = 3000) -> str:
    """Per-frame conversion cost and per-subscriber send cost of the wire form, in µs."""
    from panoseti_appliance.daqdata.server.frame import Frame

    dp = by_name("img16")
    header = json.loads(hashpipe_header("img16", 1))
    pixels = bytes(range(256)) * (dp.bytes_per_image // 256)

    def frame() -> Frame:
        return Frame(1, dp, header, pixels, "uds_img16", 1, time.time_ns())

    t0 = time.perf_counter()
    for _ in range(repeat):
        frame().pano_image_field()
    build = (time.perf_counter() - t0) / repeat * 1e6
    shared = frame()
    shared.pano_image_field()
    t0 = time.perf_counter()
    for _ in range(repeat):
        shared.response_bytes()
    send = (time.perf_counter() - t0) / repeat * 1e6
    image = shared.pano_image()
    t0 = time.perf_counter()
    for _ in range(repeat):
        response = pb.StreamImagesResponse(pano_image=image)
        response.timestamp.GetCurrentTime()
        response.SerializeToString()
    per_message = (time.perf_counter() - t0) / repeat * 1e6
    return (
        f"wire form (img16): build once {build:.1f} µs per frame; per subscriber "
        f"{send:.1f} µs (shared bytes) vs {per_message:.1f} µs (message per subscriber)"
    )


def init_times(target: str, data_dir: str, repeat: int = 5) -> str:
    """Median duration of a forced InitHpIo to the uds simulator and back to real mode."""
    durations: dict[str, list[float]] = {"simulate (uds)": [], "real": []}
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DaqDataStub(channel)
        for _ in range(repeat):
            for name, request in (
                ("simulate (uds)", pb.InitHpIoRequest(simulate_daq=True)),
                ("real", pb.InitHpIoRequest(data_dir=data_dir)),
            ):
                request.update_interval_seconds = 0.001
                request.force = True
                t0 = time.perf_counter()
                reply = stub.InitHpIo(request, timeout=30)
                durations[name].append(time.perf_counter() - t0)
                if not reply.success:
                    raise RuntimeError(f"InitHpIo {name} failed: {reply.error_message}")
    medians = ", ".join(
        f"{name} {statistics.median(d) * 1000:.0f} ms" for name, d in durations.items()
    )
    return f"forced InitHpIo, median of {repeat}: {medians}"


def _line(rate: float, result: Mapping[str, Any]) -> str:
    ingest = ", ".join(f"{dp} {r:,.0f}/s" for dp, r in result["ingest_per_dp"].items())
    delivered = ", ".join(f"{r:,.0f}" for r in result["delivered_per_client"]) or "-"
    return (
        f"producer {'flat out' if rate <= 0 else f'{rate:,.0f}/s per dp'}, "
        f"clients={result['clients']}: ingested {ingest}; delivered images/s per client: "
        f"{delivered}; daemon CPU {result['cpu_s_per_1000_frames']:.3f} s per 1000 frames"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each run")
    parser.add_argument("--modules", type=int, default=8, help="modules per data product")
    parser.add_argument("--clients", default="0,1,4", help="client counts to run")
    parser.add_argument(
        "--rates",
        default="0,2500",
        help="producer rates to run, frames/s per data product (0 = as fast as possible)",
    )
    args = parser.parse_args()
    print(wire_costs(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-daqdata-") as tmp_name:
        tmp = Path(tmp_name)
        port = free_tcp_port()
        settings = {
            "daqdata": {
                "listen": [f"127.0.0.1:{port}"],
                "hashpipe": {"socket_template": str(tmp / "hp_{dp}.sock")},
                "min_hp_io_update_interval_seconds": 0.001,
            },
            "hp_io": {"data_dir": str(tmp), "update_interval_seconds": 0.001},
            "logging": {"level": "warning"},
        }
        daemon = start_daemon("panoseti-daqdata", tmp, settings, f"127.0.0.1:{port}")
        try:
            paths = {dp: str(tmp / f"hp_{dp}.sock") for dp in PRODUCTS}
            print(init_times(daemon.target, str(tmp)), flush=True)
            for rate in (float(r) for r in args.rates.split(",")):
                for clients in (int(c) for c in args.clients.split(",")):
                    result = run(
                        daemon.target,
                        daemon.proc.pid,
                        paths,
                        args.modules,
                        clients,
                        args.seconds,
                        rate,
                    )
                    print(_line(rate, result), flush=True)
        finally:
            daemon.stop(check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
