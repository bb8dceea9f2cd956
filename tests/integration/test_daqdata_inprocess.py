"""The real daemon run in-process, for what a client alone cannot provoke or observe.

- A stream that fails on the server's side ends INTERNAL, alone, and the daemon serves on. No
  client input can make a frame unsendable (headers are checked at ingest, docs/pff.md), so the
  test plays a buggy source: it publishes a frame no protobuf Struct can hold into the hub.
- `daqdata.DaqData` health is NOT_SERVING through every step of a re-init. A re-init can be
  faster than a health Watch, which only reports the newest status, so the test reads the
  health servicer's status at each hp_io state change instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2

from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from panoseti_appliance.config import load_config
from panoseti_appliance.daqdata.server.daemon import DaqDataService
from panoseti_appliance.daqdata.server.frame import Frame
from panoseti_appliance.daqdata.server.hpio import HpIoState
from panoseti_appliance.daqdata.server.servicer import SERVICE_NAME
from panoseti_appliance.products import PH256
from panoseti_appliance.runtime.runner import Runner
from tests.daemons import free_tcp_port
from tests.integration.test_daqdata_support import init_request, settings_for, stream_request
from tests.producers import until

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _frame(header: dict[str, object], number: int) -> Frame:
    return Frame(
        module_id=3,
        dp=PH256,
        header=header,
        raw_pixels=bytes(PH256.bytes_per_image),
        file="bug.pff",
        frame_number=number,
        received_ns=time.time_ns(),
    )


@contextlib.asynccontextmanager
async def _daemon(tmp_path: Path) -> AsyncIterator[tuple[DaqDataService, Runner, int]]:
    """A started daemon (Hashpipe sockets under tmp_path), its runner and loopback port."""
    port = free_tcp_port()
    empty = tmp_path / "panoseti.yaml"
    empty.write_text("{}\n")
    service = DaqDataService(load_config(empty, settings_for(tmp_path, port), environ={}))
    runner = Runner(service)
    await runner.start()
    try:
        yield service, runner, port
    finally:
        await runner.stop()


async def test_an_unsendable_frame_ends_streams_internal_and_the_daemon_serves_on(
    tmp_path: Path,
) -> None:
    async with _daemon(tmp_path) as (daemon, _, port):
        assert daemon.engine.state is HpIoState.RUNNING
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.DaqDataStub(channel)
            daemon.hub.publish(_frame({"quabo_num": object()}, 0))
            call = stub.StreamImages(stream_request(), timeout=30)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in call:
                    pass
            assert info.value.code() == grpc.StatusCode.INTERNAL
            assert (info.value.details() or "").startswith("stream failed: ")
            assert not daemon.servicer.readers  # the failed reader is gone

            # The daemon keeps serving: a good frame replaces the bad one and a new stream has it.
            await stub.Ping(empty_pb2.Empty(), timeout=5)
            daemon.hub.publish(_frame({"quabo_num": 1, "pkt_num": 7}, 1))
            again = stub.StreamImages(stream_request(), timeout=30)
            response = await again.read()
            assert isinstance(response, pb.StreamImagesResponse)
            image = response.pano_image
            assert (image.module_id, image.frame_number, image.header["pkt_num"]) == (3, 1, 7)
            again.cancel()


async def test_daqdata_health_is_not_serving_through_a_forced_reinit(tmp_path: Path) -> None:
    seen: list[tuple[HpIoState, int]] = []
    checks: list[asyncio.Task[None]] = []
    async with _daemon(tmp_path) as (daemon, runner, port):
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)

        async def record(state: HpIoState) -> None:
            # In process, without a call: HealthServicer.Check reads no context.
            reply = await runner.health.Check(request, None)  # type: ignore[arg-type]
            seen.append((state, reply.status))

        # Registered after the daemon's own listener, so each check runs after its update.
        daemon.engine.on_state(lambda state: checks.append(asyncio.create_task(record(state))))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.DaqDataStub(channel)
            stream = stub.StreamImages(stream_request(), timeout=30)
            # The stream is open: the re-init must end it.
            await until(lambda: bool(daemon.servicer.readers), "the stream to be registered")
            reply = await stub.InitHpIo(
                init_request(data_dir=str(tmp_path / "data"), module_ids=[2], force=True),
                timeout=20,
            )
            assert reply.success, reply.error_message
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stream.read()
            assert info.value.code() == grpc.StatusCode.CANCELLED
        await asyncio.gather(*checks)
        during_reinit = list(seen)  # before the daemon's own shutdown adds to it
    assert during_reinit == [
        (HpIoState.STOPPING, NOT_SERVING),
        (HpIoState.IDLE, NOT_SERVING),
        (HpIoState.STARTING, NOT_SERVING),
        (HpIoState.RUNNING, SERVING),
    ]
