"""The rpc simulator: one long UploadImages stream to the daemon (docs/simulator.md).

Each frame becomes a PanoImage (`file = "rpc_sim_<dp>.pff"`, `frame_number` = step n, the
module id) with its pixels RAW, the PFF bytes as they are (no varint per pixel to encode and
decode), put on a small queue that a background task streams to `rpc_target`. Each request
takes every image already waiting, up to `batch`, so a fast simulator sends few large requests
and a slow one sends each image at once. The step loop waits for room in that queue, so gRPC
flow control paces the simulator: nothing is dropped, every data product gets its turn in step
order, and at rate 0 the simulator runs exactly as fast as the daemon ingests. UNAVAILABLE
(daemon restarting or still configuring) ends the call; the task reconnects with back-off and
carries on. Any other error is logged and counted, then retried the same way, so the simulator
keeps feeding a daemon that comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from panoseti_appliance._proto import daq_data_pb2, daq_data_pb2_grpc
from panoseti_appliance.daqdata.pixels import PACKED, RAW, Encoding
from panoseti_appliance.daqdata.server.frame import Frame
from panoseti_appliance.daqdata.sim.base import SENT, SimStats
from panoseti_appliance.products import DataProduct

log = logging.getLogger(__name__)

#: Images buffered between the step loop and the stream; small, so that after a reconnect the
#: daemon gets current frames rather than a backlog (gRPC flow control paces the rest).
QUEUE_SIZE = 16
#: Most images in one UploadImageRequest (pano_image plus more_images).
UPLOAD_BATCH = 16
#: Reconnect back-off: first delay and cap, in seconds.
BACKOFF_INITIAL = 0.1
BACKOFF_CAP = 2.0
#: How long close() lets queued images drain before cancelling the call.
CLOSE_DRAIN_SECONDS = 2.0


def pano_image(
    module_id: int,
    dp: DataProduct,
    header: dict[str, Any],
    pixels: bytes,
    frame_number: int,
    encoding: Encoding = PACKED,
) -> daq_data_pb2.PanoImage:
    """A PanoImage of one frame in `encoding`, as the daemon itself would send it."""
    frame = Frame(
        module_id, dp, header, pixels, f"rpc_sim_{dp.name}.pff", frame_number, time.time_ns()
    )
    return frame.pano_image(encoding)


class UploadEmitter:
    """Feeds one UploadImages stream to `target` and keeps it alive across daemon restarts."""

    def __init__(self, target: str, batch: int = UPLOAD_BATCH) -> None:
        if batch < 1:
            raise ValueError(f"upload batch must be at least 1, got {batch}")
        self.target = target
        self.batch = batch
        self.stats = SimStats()
        self.calls = 0
        self._yielded = 0
        self._queue: asyncio.Queue[tuple[str, daq_data_pb2.PanoImage] | None] = asyncio.Queue(
            maxsize=max(QUEUE_SIZE, batch)
        )
        self._channel: grpc.aio.Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def open(self) -> None:
        self._channel = grpc.aio.insecure_channel(self.target)
        self._task = asyncio.create_task(self._run(), name="sim-upload")

    async def emit(
        self, module_id: int, dp: DataProduct, header: dict[str, Any], pixels: bytes, step: int
    ) -> None:
        await self._queue.put((dp.name, pano_image(module_id, dp, header, pixels, step, RAW)))

    async def close(self) -> None:
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            # Let the queued images go out, then end the stream from the client side.
            if self._queue.full():
                self._queue.get_nowait()  # make room for the end marker; one image less
            self._queue.put_nowait(None)
            done, _ = await asyncio.wait({task}, timeout=CLOSE_DRAIN_SECONDS)
            if not done:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def _requests(self) -> AsyncIterator[daq_data_pb2.UploadImageRequest]:
        ending = False
        while not ending:
            item = await self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.batch and not self._queue.empty():
                queued = self._queue.get_nowait()
                if queued is None:
                    ending = True
                    break
                batch.append(queued)
            for dp, _ in batch:
                self.stats.add(dp, SENT)
            self._yielded += len(batch)
            images = [image for _, image in batch]
            yield daq_data_pb2.UploadImageRequest(pano_image=images[0], more_images=images[1:])

    async def _run(self) -> None:
        assert self._channel is not None
        stub = daq_data_pb2_grpc.DaqDataStub(self._channel)
        delay = BACKOFF_INITIAL
        while not self._closing:
            self.calls += 1
            yielded_before = self._yielded
            try:
                await stub.UploadImages(self._requests(), wait_for_ready=True)
                return  # the stream ended from our side (close)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                if code != grpc.StatusCode.UNAVAILABLE:
                    log.warning(
                        "rpc simulator: UploadImages to %s: %s %s",
                        self.target,
                        code.name,
                        exc.details(),
                    )
                self.stats.add("rpc", f"call_{code.name.lower()}")
            if self._yielded > yielded_before:
                delay = BACKOFF_INITIAL  # that call worked for a while: retry promptly
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_CAP)
