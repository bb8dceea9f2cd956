"""Which of the daemon's newer features this checkout has, asked of a running daemon.

Scenarios that need a feature run only where the daemon shows it, so a figure is never taken
from a daemon that silently ignored the field the scenario set (proto3 servers skip fields they
do not implement). Each probe uses its own module id, so they do not see each other's images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import grpc
import numpy as np

from bench.feeds import sample_frames, sample_image, upload_once
from bench.node import Node
from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from panoseti_appliance.daqdata.client.rpc import batch_request

#: How long a probe waits for the responses that show the feature.
WAIT = 3.0


@dataclass(frozen=True)
class Feature:
    available: bool
    why: str


def _stream(node: Node, request: pb.StreamImagesRequest) -> Any:
    channel = grpc.insecure_channel(node.target)
    return channel, pb_grpc.DaqDataStub(channel).StreamImages(request, timeout=WAIT)


def _first(node: Node, request: pb.StreamImagesRequest) -> pb.StreamImagesResponse | None:
    channel, call = _stream(node, request)
    with channel:
        try:
            response: pb.StreamImagesResponse = next(iter(call))
            return response
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return None
            raise


def _movie(module: int, **fields: Any) -> pb.StreamImagesRequest:
    return pb.StreamImagesRequest(
        stream_movie_data=True, update_interval_seconds=0.001, module_ids=[module], **fields
    )


def pixel_encoding(node: Node) -> Feature:
    """A stream asking for RAW gets the PFF bytes in pixel_data."""
    upload_once(node.target, [batch_request([sample_image(90, "img16", 0, False)])])
    response = _first(node, _movie(90, pixel_encoding=pb.PanoImage.RAW))
    if response is None:
        return Feature(False, "no response to a RAW stream")
    image = response.pano_image
    if image.pixel_encoding != pb.PanoImage.RAW or len(image.pixel_data) != 2048:
        return Feature(False, "the daemon ignores StreamImagesRequest.pixel_encoding")
    return Feature(True, "a RAW stream got 2048 bytes of pixel_data")


def every_frame(node: Node) -> Feature:
    """An every-frame stream gets each of 5 images uploaded at once, in order."""
    channel, call = _stream(
        node,
        pb.StreamImagesRequest(
            stream_movie_data=True, update_interval_seconds=30, module_ids=[91], every_frame=True
        ),
    )
    numbers: list[int] = []
    with channel:
        node.wait_streams(1)
        upload_once(
            node.target, [batch_request([sample_image(91, "img16", n, False)]) for n in range(5)]
        )
        try:
            for response in call:
                numbers += [i.frame_number for i in (response.pano_image, *response.more_images)]
                if len(numbers) >= 5:
                    break
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
        call.cancel()
    if numbers != [0, 1, 2, 3, 4]:
        return Feature(
            False, f"an every_frame stream got frames {numbers} of 5 uploaded (snapshot semantics)"
        )
    return Feature(True, "an every_frame stream got all 5 frames in order")


def batched_upload(node: Node) -> Feature:
    """An image in UploadImageRequest.more_images reaches a stream."""
    images = [sample_image(92, "img16", 0, False), sample_image(93, "img16", 0, False)]
    upload_once(node.target, [batch_request(images)])
    if _first(node, _movie(93)) is None:
        return Feature(False, "the daemon ignores UploadImageRequest.more_images")
    return Feature(True, "an image in more_images was published")


def raw_upload(node: Node) -> Feature:
    """An uploaded image with RAW pixel_data is accepted and streamed with the same pixels."""
    try:
        upload_once(node.target, [batch_request([sample_image(94, "img16", 0, True)])])
    except grpc.RpcError as exc:
        return Feature(False, f"a RAW upload is refused: {exc.code().name}: {exc.details()}")
    response = _first(node, _movie(94))
    want = np.frombuffer(sample_frames("img16")[0].pixels, dtype="<u2")
    if response is None or not np.array_equal(np.asarray(response.pano_image.image_array), want):
        return Feature(False, "a RAW upload was not streamed back with its pixels")
    return Feature(True, "a RAW upload came back with its pixels")


PROBES: dict[str, Callable[[Node], Feature]] = {
    "pixel_encoding": pixel_encoding,
    "every_frame": every_frame,
    "batched_upload": batched_upload,
    "raw_upload": raw_upload,
}


def probe_all(node: Node) -> dict[str, dict[str, Any]]:
    """Every probe's outcome; a probe that fails unexpectedly counts as not available."""
    out: dict[str, dict[str, Any]] = {}
    for name, probe in PROBES.items():
        try:
            feature = probe(node)
        except (grpc.RpcError, TimeoutError, OSError) as exc:
            feature = Feature(False, f"probe failed: {exc!r}")
        out[name] = asdict(feature)
    return out
