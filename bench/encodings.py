"""Scenarios 6 and 7: what each pixel encoding costs a client to decode and weighs on the wire.

The bundled sample run (real ph256 of module 254 and the generated img16 movie) is uploaded frame
by frame to a real daemon while one snapshot stream per encoding reads it, so every encoding is
measured on the same frames exactly as the daemon sends them. Wire size: the whole response and
the pixel fields alone (against the raw bytes: 2 048 for img16, 512 for ph256). Decode: this
thread's CPU time per image for the client library's `image_array` (pixels only) and for
`parse_pano_image` after parsing the response bytes (what a client does per image), medians of
rounds over all the frames.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np

from bench.feeds import raw_upload, sample_frames, sample_image
from bench.loads import CHANNEL_OPTIONS
from bench.node import Node
from bench.readers import raw_stream
from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance.daqdata.client.rpc import batch_request
from panoseti_appliance.products import by_name

ENCODINGS: dict[str, pb.PanoImage.Encoding] = {
    "PACKED": pb.PanoImage.PACKED,
    "RAW": pb.PanoImage.RAW,
    "BLOSC_LZ4": pb.PanoImage.BLOSC_LZ4,
    "BLOSC_ZSTD": pb.PanoImage.BLOSC_ZSTD,
}
PRODUCTS = ("img16", "ph256")
SOURCE = {"img16": "bundled img16 movie (generated)", "ph256": "bundled ph256 (real, module 254)"}
MODULE = 254
ROUNDS = 5
#: Passes over the frames per round: many for the cheap pixel decode, fewer for a full parse.
PIXEL_PASSES = 20
PARSE_PASSES = 3
WAIT = 10.0


async def _capture(node: Node, dp: str) -> dict[str, list[bytes]]:
    """Every sample frame of `dp` as each encoding's stream received it (response bytes)."""
    frames = sample_frames(dp)
    movie = by_name(dp).is_movie
    queues: dict[str, asyncio.Queue[bytes]] = {name: asyncio.Queue() for name in ENCODINGS}
    got: dict[str, list[bytes]] = {name: [] for name in ENCODINGS}
    async with grpc.aio.insecure_channel(node.target, options=CHANNEL_OPTIONS) as channel:

        async def read(name: str) -> None:
            request = pb.StreamImagesRequest(
                stream_movie_data=movie,
                stream_pulse_height_data=not movie,
                update_interval_seconds=0.001,
                module_ids=[MODULE],
                pixel_encoding=ENCODINGS[name],
            ).SerializeToString()
            async for raw in raw_stream(channel)(request):
                await queues[name].put(raw)

        readers = [asyncio.create_task(read(name)) for name in ENCODINGS]
        await asyncio.to_thread(node.wait_streams, len(ENCODINGS))
        upload = raw_upload(channel)()
        for index in range(len(frames)):
            image = sample_image(MODULE, dp, index, raw=False)
            await upload.write(batch_request([image]).SerializeToString())
            for name, queue in queues.items():
                while True:
                    raw = await asyncio.wait_for(queue.get(), WAIT)
                    number = pb.StreamImagesResponse.FromString(raw).pano_image.frame_number
                    if number == index:
                        got[name].append(raw)
                        break
        await upload.done_writing()
        await upload
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return got


def _pixel_field_bytes(image: pb.PanoImage) -> int:
    """Bytes of the pixel fields (image_array, pixel_data, pixel_encoding) in the message."""
    pixels = pb.PanoImage(pixel_encoding=image.pixel_encoding, pixel_data=image.pixel_data)
    pixels.image_array.extend(image.image_array)
    return pixels.ByteSize()


def _cpu_us(work: Callable[[], int]) -> float:
    """Median over ROUNDS of this thread's CPU µs per item of `work()` (which returns items)."""
    per_item = []
    for _ in range(ROUNDS):
        t0 = time.thread_time_ns()
        items = work()
        per_item.append((time.thread_time_ns() - t0) / items / 1000)
    return statistics.median(per_item)


def _unavailable(name: str, responses: list[bytes], reference: list[np.ndarray]) -> str | None:
    """Why this encoding's figures would not be real, or None."""
    from panoseti_appliance.daqdata.client.parse import image_array

    for raw, want in zip(responses, reference, strict=True):
        image = pb.StreamImagesResponse.FromString(raw).pano_image
        if image.pixel_encoding != ENCODINGS[name]:
            return f"the daemon sent {pb.PanoImage.Encoding.Name(image.pixel_encoding)}"
        try:
            pixels = image_array(image)
        except ValueError as exc:
            return f"the client cannot decode it: {exc}"
        if not np.array_equal(pixels, want):
            return "the client decodes other pixels than PACKED gives"
    return None


def measure(node: Node) -> dict[str, list[dict[str, Any]]]:
    """Scenario 6 (decode) and 7 (wire) runs, per product and encoding."""
    from panoseti_appliance.daqdata.client.parse import image_array, parse_pano_image

    decode: list[dict[str, Any]] = []
    wire: list[dict[str, Any]] = []
    for dp in PRODUCTS:
        captured = asyncio.run(_capture(node, dp))
        raw_bytes = by_name(dp).bytes_per_image
        reference = [
            image_array(pb.StreamImagesResponse.FromString(r).pano_image)
            for r in captured["PACKED"]
        ]
        for name, responses in captured.items():
            run = {"key": f"{dp}_{name}", "run": f"{dp} {name}"}
            why = _unavailable(name, responses, reference)
            if why is not None:
                decode.append({**run, "unavailable": why})
                wire.append({**run, "unavailable": why})
                continue
            images = [pb.StreamImagesResponse.FromString(r).pano_image for r in responses]
            pixel_bytes = statistics.mean(_pixel_field_bytes(i) for i in images)
            wire.append(
                {
                    **run,
                    "data": f"{SOURCE[dp]}, {len(images)} frames",
                    "response_bytes": statistics.mean(len(r) for r in responses),
                    "pixel_bytes": pixel_bytes,
                    "raw_bytes": raw_bytes,
                    "pixel_ratio": pixel_bytes / raw_bytes,
                }
            )

            def pixels(images: list[Any] = images) -> int:
                for _ in range(PIXEL_PASSES):
                    for image in images:
                        image_array(image)
                return PIXEL_PASSES * len(images)

            def parse(responses: list[bytes] = responses) -> int:
                for _ in range(PARSE_PASSES):
                    for raw in responses:
                        parse_pano_image(pb.StreamImagesResponse.FromString(raw).pano_image)
                return PARSE_PASSES * len(responses)

            decode.append({**run, "pixels_us": _cpu_us(pixels), "parse_us": _cpu_us(parse)})
    return {"6": decode, "7": wire}
