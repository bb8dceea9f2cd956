"""A stream that fails on the server's side ends INTERNAL, alone, and the daemon serves on.

No client input can make a frame unsendable (headers are checked at ingest, docs/pff.md), so
this runs the real daemon in-process and has the test play a buggy source: it publishes a frame
whose header no protobuf Struct can hold, straight into the daemon's hub.
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2

from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from panoseti_appliance.config import load_config
from panoseti_appliance.daqdata.frame import Frame
from panoseti_appliance.daqdata.hpio import HpIoState
from panoseti_appliance.daqdata.server import DaqDataDaemon
from panoseti_appliance.products import PH256
from tests.daemons import free_tcp_port
from tests.integration.test_daqdata_support import settings_for, stream_request


def _frame(header: dict[str, object], number: int) -> Frame:
    return Frame(
        module_id=3,
        dp=PH256,
        header=header,
        pixels=bytes(PH256.bytes_per_image),
        file="bug.pff",
        frame_number=number,
        received_ns=time.time_ns(),
    )


async def test_an_unsendable_frame_ends_streams_internal_and_the_daemon_serves_on(
    tmp_path: Path,
) -> None:
    port = free_tcp_port()
    empty = tmp_path / "panoseti.yaml"
    empty.write_text("{}\n")
    daemon = DaqDataDaemon(load_config(empty, settings_for(tmp_path, port), environ={}))
    await daemon.start()
    try:
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
            image = (await again.read()).pano_image
            assert (image.module_id, image.frame_number, image.header["pkt_num"]) == (3, 1, 7)
            again.cancel()
    finally:
        await daemon.stop()
