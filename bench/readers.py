"""StreamImages readers: one process runs any number of streams and counts what arrives.

Responses are taken as bytes (no deserializer) and parsed only when the figure needs it: an
every-frame stream for its image count and `frames_lost`, a recording stream for the key and
receive time of each image (latency). Counts go to shared counters, three slots per stream
(responses, images, frames lost), so the parent can read them during the run.

What a reader parses is a view of StreamImagesResponse (`ResponseView`) that declares only
frames_lost and, of each image, type, frame_number and module_id: protobuf skips the header and
the pixels without decoding them, so a reader costs a fraction of what the daemon spends on the
same responses and the figures are the daemon's, not the reader's.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from bench.loads import CHANNEL_OPTIONS, Gate
from panoseti_appliance._proto import daq_data_pb2 as pb

STREAM_METHOD = "/daqdata.DaqData/StreamImages"
#: Shared counter slots per stream: responses, images, frames lost.
SLOTS = 3


def _response_view() -> type[Message]:
    """A message class reading StreamImagesResponse's fields 4-6 and, of each PanoImage, fields
    1, 7 and 8 (same numbers and wire types as protos/daq_data.proto); the rest is skipped."""
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="bench_response_view.proto", package="bench", syntax="proto3"
    )
    key = file.message_type.add(name="ImageKey")
    key.field.add(name="type", number=1, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    key.field.add(name="frame_number", number=7, type=field.TYPE_UINT32, label=field.LABEL_OPTIONAL)
    key.field.add(name="module_id", number=8, type=field.TYPE_UINT32, label=field.LABEL_OPTIONAL)
    view = file.message_type.add(name="ResponseView")
    for name, number, label in (
        ("pano_image", 4, field.LABEL_OPTIONAL),
        ("more_images", 6, field.LABEL_REPEATED),
    ):
        view.field.add(
            name=name,
            number=number,
            type=field.TYPE_MESSAGE,
            label=label,
            type_name=".bench.ImageKey",
        )
    view.field.add(name="frames_lost", number=5, type=field.TYPE_UINT64, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("bench.ResponseView"))


ResponseView = _response_view()


def raw_stream(channel: grpc.aio.Channel) -> grpc.aio.UnaryStreamMultiCallable[bytes, bytes]:
    """StreamImages taking a serialized request and giving serialized responses."""
    stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
        STREAM_METHOD, request_serializer=None, response_deserializer=None
    )
    return stream


@dataclass(frozen=True)
class ReadPlan:
    """`streams` StreamImages calls with the same request."""

    streams: int = 1
    movie: bool = True
    pulse_height: bool = True
    interval: float = 0.001
    every_frame: bool = False
    per_response: int = 0
    encoding: pb.PanoImage.Encoding = pb.PanoImage.PACKED
    record: bool = False

    def request(self) -> pb.StreamImagesRequest:
        return pb.StreamImagesRequest(
            stream_movie_data=self.movie,
            stream_pulse_height_data=self.pulse_height,
            update_interval_seconds=self.interval,
            every_frame=self.every_frame,
            max_frames_per_response=self.per_response,
            pixel_encoding=self.encoding,
        )

    @property
    def parse(self) -> bool:
        return self.every_frame or self.record

    def describe(self) -> str:
        what = "+".join(
            name for name, on in (("movie", self.movie), ("PH", self.pulse_height)) if on
        )
        form = (
            ""
            if self.encoding == pb.PanoImage.PACKED
            else f", {pb.PanoImage.Encoding.Name(self.encoding)}"
        )
        if self.every_frame:
            per = max(self.per_response, 1)
            return f"every frame ({what}, up to {per} per response{form})"
        return f"snapshot {what} at {self.interval * 1000:g} ms{form}"


async def _read_one(
    call: Any,
    plan: ReadPlan,
    counter: Any,
    base: int,
    records: list[tuple[int, int, int, int]],
) -> None:
    async for raw in call:
        counter[base] += 1
        if not plan.parse:
            counter[base + 1] += 1
            continue
        now = time.monotonic_ns()
        response: Any = ResponseView.FromString(raw)
        counter[base + 1] += 1 + len(response.more_images)
        counter[base + 2] += response.frames_lost
        if plan.record:
            for image in (response.pano_image, *response.more_images):
                records.append((image.module_id, image.type, image.frame_number, now))


def read(target: str, plan: ReadPlan, counter: Any, first: int, gate: Gate, result: Any) -> None:
    """Run the plan's streams (a process of its own) until `stop`; counters from slot `first`.
    Reports the recorded images and how any stream ended other than by being cancelled."""
    records: list[tuple[int, int, int, int]] = []

    async def main() -> list[str]:
        request = plan.request().SerializeToString()
        channels = [
            grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) for _ in range(plan.streams)
        ]
        calls = [raw_stream(channel)(request) for channel in channels]
        tasks = [
            asyncio.create_task(_read_one(call, plan, counter, first + i * SLOTS, records))
            for i, call in enumerate(calls)
        ]
        gate.ready.set()
        await asyncio.to_thread(gate.stop.wait)
        for call in calls:
            call.cancel()
        ends = await asyncio.gather(*tasks, return_exceptions=True)
        for channel in channels:
            await channel.close()
        return [
            f"{end.code().name}: {end.details()}"
            if isinstance(end, grpc.aio.AioRpcError)
            else repr(end)
            for end in ends
            if end is not None
            and not isinstance(end, asyncio.CancelledError)
            and not (
                isinstance(end, grpc.aio.AioRpcError) and end.code() == grpc.StatusCode.CANCELLED
            )
        ]

    errors = asyncio.run(main())
    result.put({"records": records, "errors": errors})
