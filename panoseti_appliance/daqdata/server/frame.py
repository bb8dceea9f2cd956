"""The in-memory Frame every ingestion source produces, and its one-time wire form.

A frame is converted to protobuf lazily and at most once: the first stream that sends it builds
the serialized `PanoImage` (Struct header plus 1024 packed varints, the expensive part) and every
other subscriber reuses those bytes. A frame overwritten in the hub before any tick needs it is
never converted at all. Per send only the response envelope (timestamp) is added by
`response_bytes`, which costs about a fifteenth of building and serializing a
`StreamImagesResponse` per subscriber (`bench/bench_daqdata.py` prints both; figures in
docs/performance.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from google.protobuf import timestamp_pb2

from panoseti_appliance._proto import daq_data_pb2
from panoseti_appliance.products import DataProduct

# Field tags of StreamImagesResponse (daq_data.proto): 2 timestamp, 4 pano_image, both
# length-delimited (wire type 2).
_TIMESTAMP_TAG = b"\x12"
_PANO_IMAGE_TAG = b"\x22"


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def wire_pixels(dp: DataProduct, pixels: bytes) -> np.ndarray:
    """The raw pixel bytes as the unsigned values `image_array` carries (PH as uint16)."""
    unsigned = np.dtype("<u2") if dp.bytes_per_pixel == 2 else np.dtype("u1")
    return np.frombuffer(pixels, dtype=unsigned)


def build_pano_image(frame: Frame) -> daq_data_pb2.PanoImage:
    """A PanoImage for `frame`: header as Struct (numbers become doubles), pixels unsigned."""
    dp = frame.dp
    image = daq_data_pb2.PanoImage(
        type=dp.image_type.name,
        shape=[dp.rows, dp.cols],
        bytes_per_pixel=dp.bytes_per_pixel,
        file=frame.file,
        frame_number=frame.frame_number,
        module_id=frame.module_id,
    )
    image.header.update(frame.header)
    image.image_array.extend(wire_pixels(dp, frame.pixels).tolist())
    return image


@dataclass(slots=True)
class Frame:
    """One image of one module and data product, as ingested.

    `pixels` is the raw little-endian pixel bytes, exactly dp.bytes_per_image long. `file` and
    `frame_number` are what clients see in PanoImage (file name and index, `uds_<dp>` and a
    per-(module, dp) counter, or what an uploader sent). `received_ns` is time.time_ns() at ingest.
    """

    module_id: int
    dp: DataProduct
    header: dict[str, Any]
    pixels: bytes
    file: str
    frame_number: int
    received_ns: int
    # The serialized `pano_image` field of a StreamImagesResponse (tag, length, PanoImage),
    # built on first use. An uploader's already-validated PanoImage can be passed in directly.
    _wire: bytes | None = field(default=None, repr=False, compare=False)

    def pano_image_field(self) -> bytes:
        """The response's `pano_image` field, built once however many clients get this frame."""
        wire = self._wire
        if wire is None:
            payload = build_pano_image(self).SerializeToString()
            wire = self._wire = _length_delimited(_PANO_IMAGE_TAG, payload)
        return wire

    def use_pano_image(self, image: daq_data_pb2.PanoImage) -> None:
        """Adopt an existing PanoImage (an upload) as this frame's wire form."""
        self._wire = _length_delimited(_PANO_IMAGE_TAG, image.SerializeToString())

    def pano_image(self) -> daq_data_pb2.PanoImage:
        """This frame as a PanoImage message (parsed from the cached wire form)."""
        response = daq_data_pb2.StreamImagesResponse.FromString(self.pano_image_field())
        return response.pano_image

    def response_bytes(self, sent_ns: int | None = None) -> bytes:
        """A serialized StreamImagesResponse: `timestamp` = send time, then `pano_image`."""
        ns = time.time_ns() if sent_ns is None else sent_ns
        seconds, nanos = divmod(ns, 1_000_000_000)
        stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos).SerializeToString()
        return _length_delimited(_TIMESTAMP_TAG, stamp) + self.pano_image_field()


#: Where a source hands its frames. Called on the event loop; never blocks.
FrameSink = Callable[[Frame], None]
