"""The rpc simulator against a real grpc.aio UploadImages server on a Unix socket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf import empty_pb2, json_format

from panoseti_appliance import pff
from panoseti_appliance._proto import daq_data_pb2, daq_data_pb2_grpc
from panoseti_appliance.config import SimulatorConfig
from panoseti_appliance.daqdata.sim.frames import load_frames
from panoseti_appliance.daqdata.sim.simulator import Simulator, SimulatorError
from panoseti_appliance.daqdata.sim.upload import UploadEmitter, pano_image
from panoseti_appliance.products import PH256, by_layout
from tests.producers import until

WAIT = 30.0
DATA = Path(__file__).resolve().parent.parent / "data"
PH_FILE = DATA / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"


class Uploads(daq_data_pb2_grpc.DaqDataServicer):
    """Collects uploaded images; the first `refuse` calls end with UNAVAILABLE after one image."""

    def __init__(self, refuse: int = 0) -> None:
        self.images: list[daq_data_pb2.PanoImage] = []
        #: Images per request, in order.
        self.batches: list[int] = []
        self.calls = 0
        self.refuse = refuse

    async def UploadImages(
        self, request_iterator: AsyncIterator[daq_data_pb2.UploadImageRequest], context: Any
    ) -> empty_pb2.Empty:
        self.calls += 1
        async for request in request_iterator:
            if self.calls <= self.refuse:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "Server is being configured")
            self.images.extend([request.pano_image, *request.more_images])
            self.batches.append(1 + len(request.more_images))
        return empty_pb2.Empty()


async def serve(path: Path, servicer: Uploads) -> grpc.aio.Server:
    server = grpc.aio.server()
    daq_data_pb2_grpc.add_DaqDataServicer_to_server(servicer, server)
    server.add_insecure_port(f"unix://{path}")
    await server.start()
    return server


def make_sim(target: str | None, **kw: Any) -> Simulator:
    cfg: dict[str, Any] = {"mode": "rpc", "module_ids": [1, 254], "update_interval_seconds": 0}
    cfg.update(kw)
    return Simulator(
        SimulatorConfig.model_validate(cfg),
        socket_template="/nonexistent/{dp}",
        pipe_name="read_status_2",
        rpc_target=target,
    )


def test_pano_image_carries_unsigned_pixels_and_the_header() -> None:
    frame = load_frames(PH_FILE, PH256, "ph")[0]
    image = pano_image(254, PH256, frame.header, frame.pixels, 17)
    assert by_layout(image.type, image.shape, image.bytes_per_pixel) is PH256
    assert (image.file, image.frame_number, image.module_id) == ("rpc_sim_ph256.pff", 17, 254)
    signed = np.frombuffer(frame.pixels, "<i2")
    assert list(image.image_array) == signed.astype(np.uint16).tolist()
    assert min(signed) < 0
    assert max(image.image_array) > 32767
    assert json_format.MessageToDict(image.header)["pkt_num"] == 5124


async def test_uploads_every_frame_with_its_module_and_step(tmp_path: Path) -> None:
    servicer = Uploads()
    server = await serve(tmp_path / "d.sock", servicer)
    sim = make_sim(f"unix://{tmp_path / 'd.sock'}", frame_limit=25)
    try:
        await sim.start()
        await sim.wait()
        await until(lambda: len(servicer.images) == 100, "100 images")
    finally:
        await sim.stop()
        await server.stop(None)
    first = servicer.images[:4]
    assert [(i.module_id, i.file, i.frame_number) for i in first] == [
        (1, "rpc_sim_img16.pff", 0),
        (1, "rpc_sim_ph256.pff", 0),
        (254, "rpc_sim_img16.pff", 0),
        (254, "rpc_sim_ph256.pff", 0),
    ]
    assert servicer.images[-1].frame_number == 24
    header = json_format.MessageToDict(servicer.images[1].header)
    wr = pff.header_wr_time({k: int(v) for k, v in header.items()})
    assert not wr.desync
    assert wr.unix_ns is not None
    assert abs(wr.unix_ns - time.time_ns()) < 600 * 10**9
    assert sim.stats.get("img16", "sent") == 50
    assert sim.stats.get("ph256", "sent") == 50
    assert servicer.calls == 1


async def test_reconnects_after_unavailable_and_daemon_restart(tmp_path: Path) -> None:
    path = tmp_path / "d.sock"
    servicer = Uploads(refuse=2)
    server = await serve(path, servicer)
    sim = make_sim(f"unix://{path}", update_interval_seconds=0.01, module_ids=[3])
    try:
        await sim.start()
        await until(lambda: len(servicer.images) >= 5, "images after two refused calls")
        assert servicer.calls == 3
        await server.stop(None)
        restarted = Uploads()
        server = await serve(path, restarted)
        await until(lambda: len(restarted.images) >= 5, "images after a restart")
    finally:
        await sim.stop()
        await server.stop(None)
    assert {i.module_id for i in restarted.images} == {3}
    assert sim.stats.get("rpc", "call_unavailable") >= 2


async def test_rpc_mode_without_target_is_refused() -> None:
    with pytest.raises(SimulatorError, match="rpc simulator has no target"):
        await make_sim(None).start()


async def test_stop_while_the_daemon_is_absent_is_bounded(tmp_path: Path) -> None:
    sim = make_sim(f"unix://{tmp_path / 'nobody.sock'}", update_interval_seconds=0.01)
    await sim.start()
    await until(lambda: sim.steps > 3, "a few steps")
    await asyncio.wait_for(sim.stop(), timeout=WAIT)
    assert sim.finished is False  # stopped: no task left


async def test_full_rate_is_paced_by_the_server_and_drops_nothing(tmp_path: Path) -> None:
    servicer = Uploads()
    server = await serve(tmp_path / "d.sock", servicer)
    sim = make_sim(f"unix://{tmp_path / 'd.sock'}", frame_limit=500, module_ids=[8])
    try:
        await sim.start()
        await sim.wait()  # 1000 images through a 16-slot queue: the loop waited, never dropped
        await until(lambda: len(servicer.images) == 1000, "all 1000 images")
    finally:
        await sim.stop()
        await server.stop(None)
    files = [image.file for image in servicer.images]
    assert files == ["rpc_sim_img16.pff", "rpc_sim_ph256.pff"] * 500
    assert [image.frame_number for image in servicer.images[::2]] == list(range(500))
    assert max(servicer.batches) <= 16


async def test_queued_images_go_out_together_in_raw(tmp_path: Path) -> None:
    """Images already waiting when a request is sent go with it, up to the batch size, with
    their pixels RAW (the PFF's bytes)."""
    frames = load_frames(PH_FILE, PH256, "ph")[:7]
    servicer = Uploads()
    server = await serve(tmp_path / "d.sock", servicer)
    emitter = UploadEmitter(f"unix://{tmp_path / 'd.sock'}", batch=3)
    try:
        await emitter.open()
        for n, frame in enumerate(frames):  # a queue with room: no await suspends here
            await emitter.emit(5, PH256, frame.header, frame.pixels, n)
        await until(lambda: len(servicer.images) == 7, "7 images")
    finally:
        await emitter.close()
        await server.stop(None)
    assert servicer.batches == [3, 3, 1]
    assert [image.frame_number for image in servicer.images] == list(range(7))
    for image, frame in zip(servicer.images, frames, strict=True):
        assert image.pixel_encoding == daq_data_pb2.PanoImage.RAW
        assert image.pixel_data == frame.pixels
        assert not image.image_array
    assert emitter.stats.get("ph256", "sent") == 7
