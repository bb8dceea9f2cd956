"""The bare gRPC ceiling of this machine for UploadImages, one image per message.

A generic grpc.aio handler registered for the daemon's method path that does no work at all (no
deserializer, it only counts the messages) receives the same requests, from the same uploader
process, as scenario 1's one-per-message run. Its rate is what gRPC and Python alone allow, the
yardstick for what the daemon's own work per image costs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from bench.feeds import UploadPlan, sample_image, upload
from bench.loads import Gate, Loads, counters
from panoseti_appliance.daqdata.client.rpc import batch_request
from tests.daemons import free_tcp_port

SERVICE = "daqdata.DaqData"


def serve_bare(port: int, counter: Any, gate: Gate, result: Any) -> None:
    """A do-nothing UploadImages server (a process of its own) counting into counter[0]."""

    async def handler(requests: AsyncIterator[bytes], _context: Any) -> bytes:
        async for _ in requests:
            counter[0] += 1
        return b""

    async def main() -> None:
        server = grpc.aio.server()
        methods: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
            "UploadImages": grpc.stream_unary_rpc_method_handler(handler)
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, methods),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        gate.ready.set()
        await asyncio.to_thread(gate.stop.wait)
        await server.stop(grace=1.0)

    asyncio.run(main())
    result.put(counter[0])


def measure_ceiling(seconds: float, settle: float = 0.5) -> dict[str, Any]:
    """Messages/s the bare handler receives from one uploader process sending flat out."""
    plan = UploadPlan()
    shared = counters(2)
    server, client = Loads(), Loads()
    port = free_tcp_port()
    try:
        server.start(serve_bare, port, shared)
        client.start(upload, f"127.0.0.1:{port}", plan, shared, 1)
        client.go()
        time.sleep(settle)
        t0, n0 = time.monotonic(), shared[0]
        time.sleep(seconds)
        t1, n1 = time.monotonic(), shared[0]
        (sent,) = client.stop()
        server.stop()
    finally:
        client.close()
        server.close()
    return {
        "run": "bare handler, one uploader process",
        "messages_per_s": (n1 - n0) / (t1 - t0),
        "request_bytes": batch_request([sample_image(1, "img16", 0, False)]).ByteSize(),
        "error": sent["error"],
    }
