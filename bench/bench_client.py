#!/usr/bin/env python3
"""Client stream throughput: images/s one client takes from a server that sends flat out.

    .venv/bin/python bench/bench_client.py                    # this tree's clients
    .venv/bin/python bench/bench_client.py --tree /tmp/before # another checkout's clients

A server process streams one prebuilt img16 StreamImagesResponse (the bundled sample's first
frame) again and again on a loopback port, from a generic handler that does no other work, so the
figures are the client's ceiling, not the daemon's (the daemon serves a client at most about
2 200 images/s: docs/performance.md). Measured, medians of 3 runs: a bare generated stub (the
gRPC ceiling of one Python process), AioDaqDataClient and DaqDataClient, raw
(parse_pano_images=False) and parsed. `--tree DIR` imports panoseti_appliance from DIR instead of
this checkout (a `git worktree` of an older commit with this tree's `_proto` linked in), for a
before/after comparison in one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RUNS = 3


def use_tree(tree: Path) -> None:
    """Import panoseti_appliance from `tree`: drop the editable install's finder, put it first."""
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
    sys.path.insert(0, str(tree))


def one_response() -> bytes:
    from panoseti_appliance import pff, sample_data
    from panoseti_appliance._proto import daq_data_pb2
    from panoseti_appliance.daqdata.sim.upload import pano_image

    frame = next(iter(pff.iter_frames(sample_data.sample_files()["img16"])))
    image = pano_image(1, frame.dp, frame.header, frame.pixels, frame.index)
    return daq_data_pb2.StreamImagesResponse(pano_image=image).SerializeToString()


def serve(port: int) -> None:
    """The flat-out server (run in its own process by `main`)."""
    import grpc

    wire = one_response()

    async def stream(_request: bytes, _context: Any) -> Any:
        while True:
            yield wire

    async def ping(_request: bytes, _context: Any) -> bytes:
        return b""

    async def run() -> None:
        server = grpc.aio.server()
        handler = grpc.method_handlers_generic_handler(
            "daqdata.DaqData",
            {
                "StreamImages": grpc.unary_stream_rpc_method_handler(stream),
                "Ping": grpc.unary_unary_rpc_method_handler(ping),
            },
        )
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        print("ready", flush=True)
        await server.wait_for_termination()

    asyncio.run(run())


def rate(count: int, receive: Callable[[int], None]) -> float:
    """Median images/s of RUNS runs of `receive(count)`."""
    rates = []
    for _ in range(RUNS):
        start = time.perf_counter()
        receive(count)
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def bare_stub(target: str, count: int) -> None:
    import grpc

    from panoseti_appliance._proto import daq_data_pb2, daq_data_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = daq_data_pb2_grpc.DaqDataStub(channel)
        call = stub.StreamImages(daq_data_pb2.StreamImagesRequest())
        for n, _ in enumerate(call, 1):
            if n == count:
                call.cancel()
                break


def sync_client(target: str, count: int, parse: bool) -> None:
    from panoseti_appliance.daqdata.client import DaqDataClient

    with DaqDataClient(None, None, hosts=[target]) as client:
        stream = client.stream_images(
            hosts=[target], stream_movie_data=True, stream_pulse_height_data=True,
            update_interval_seconds=-1, parse_pano_images=parse,
        )  # fmt: skip
        for n, _ in enumerate(stream, 1):
            if n == count:
                break


def aio_client(target: str, count: int, parse: bool) -> None:
    from panoseti_appliance.daqdata.client import AioDaqDataClient

    async def run() -> None:
        async with AioDaqDataClient(None, None, hosts=[target]) as client:
            n = 0
            stream = await client.stream_images(
                hosts=[target], stream_movie_data=True, stream_pulse_height_data=True,
                update_interval_seconds=-1, parse_pano_images=parse,
            )  # fmt: skip
            async for _ in stream:
                n += 1
                if n == count:
                    break

    asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000, help="images per run (raw)")
    parser.add_argument("--tree", type=Path, help="import panoseti_appliance from this checkout")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tree is not None:
        use_tree(args.tree.resolve())
    if args.serve is not None:
        serve(args.serve)
        return 0
    from panoseti_appliance.localnode import free_loopback_port

    port = free_loopback_port()
    command = [sys.executable, __file__, "--serve", str(port)]
    if args.tree is not None:
        command += ["--tree", str(args.tree)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        target = f"127.0.0.1:{port}"
        parsed = max(args.count // 4, 1)
        rows = [
            ("bare generated stub", "raw", rate(args.count, lambda n: bare_stub(target, n))),
            ("AioDaqDataClient", "raw", rate(args.count, lambda n: aio_client(target, n, False))),
            ("DaqDataClient", "raw", rate(args.count, lambda n: sync_client(target, n, False))),
            ("AioDaqDataClient", "parsed", rate(parsed, lambda n: aio_client(target, n, True))),
            ("DaqDataClient", "parsed", rate(parsed, lambda n: sync_client(target, n, True))),
        ]
    finally:
        server.terminate()
        server.wait()
    ceiling = rows[0][2]
    print(f"{'client':22} {'images':7} {'images/s':>9} {'of bare stub':>13}")
    for name, kind, value in rows:
        print(f"{name:22} {kind:7} {value:9.0f} {value / ceiling:12.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
