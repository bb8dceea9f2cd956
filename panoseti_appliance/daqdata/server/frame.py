"""The in-memory Frame every ingestion source produces, and its wire forms, each built once.

A frame is converted to protobuf lazily and at most once per pixel encoding: the first stream
that sends it in an encoding builds the serialized `PanoImage` in that encoding and every other
subscriber reuses those bytes. A frame overwritten in the hub before any stream needs it is never
converted at all. The PanoImage is kept in two parts, the fields other than the pixels (type,
header Struct, shape, ...; the expensive part, built once) and the pixels in one encoding;
protobuf lets fields come in any order, so their concatenation is the whole message. Per send
only the response envelope (timestamp, frames_lost) is added by `response_bytes`, which costs
about a fifteenth of building and serializing a `StreamImagesResponse` per subscriber
(`bench/bench_daqdata.py` prints both; figures in docs/performance.md).

The encodings (docs/daqdata.md, "Pixel encodings"): PACKED fills `image_array` (what every
original client reads), RAW puts the PFF's little-endian bytes in `pixel_data`, BLOSC_LZ4 and
BLOSC_ZSTD put one blosc2 chunk of those bytes there (bitshuffle, typesize bytes_per_pixel).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from google.protobuf import timestamp_pb2

from panoseti_appliance._proto import daq_data_pb2
from panoseti_appliance.daqdata.pixels import (
    PACKED,
    RAW,
    Encoding,
    compress,
    packed_varints,
    wire_dtype,
    without_pixels,
)
from panoseti_appliance.daqdata.server.wire import length_delimited, varint
from panoseti_appliance.products import DataProduct

# Field tags (field number << 3 | wire type; 2 is length-delimited, 0 a varint).
# StreamImagesResponse: 2 timestamp, 4 pano_image, 5 frames_lost, 6 more_images.
_TIMESTAMP_TAG = b"\x12"
_PANO_IMAGE_TAG = b"\x22"
_FRAMES_LOST_TAG = b"\x28"
_MORE_IMAGES_TAG = b"\x32"
# PanoImage: 3 image_array (packed), 9 pixel_data, 10 pixel_encoding.
_IMAGE_ARRAY_TAG = b"\x1a"
_PIXEL_DATA_TAG = b"\x4a"
_PIXEL_ENCODING_TAG = b"\x50"


def packed_to_raw(dp: DataProduct, values: Iterable[int]) -> bytes:
    """`image_array` values (already checked to fit) as the raw little-endian pixel bytes."""
    return np.array(values, dtype=np.uint32).astype(wire_dtype(dp.bytes_per_pixel)).tobytes()


def metadata_image(frame: Frame) -> daq_data_pb2.PanoImage:
    """A PanoImage for `frame` without its pixels: header as Struct (numbers become doubles)."""
    dp = frame.dp
    image = daq_data_pb2.PanoImage(
        type=dp.image_type.name,
        shape=[dp.rows, dp.cols],
        bytes_per_pixel=dp.bytes_per_pixel,
        file=frame.file,
        frame_number=frame.frame_number,
        module_id=frame.module_id,
    )
    image.header.update(frame.header or {})
    return image


def pixel_fields(dp: DataProduct, pixels: bytes, encoding: Encoding) -> bytes:
    """The serialized PanoImage fields carrying `pixels` in `encoding`."""
    if encoding == PACKED:
        return length_delimited(_IMAGE_ARRAY_TAG, packed_varints(dp, pixels))
    data = pixels if encoding == RAW else compress(dp, pixels, encoding)
    return (
        length_delimited(_PIXEL_DATA_TAG, data)
        + _PIXEL_ENCODING_TAG
        + varint(encoding)  # RAW and BLOSC_* are non-zero, so proto3 writes the field
    )


@dataclass(slots=True)
class Frame:
    """One image of one module and data product, as ingested.

    `pixels` is the raw little-endian pixel bytes, exactly dp.bytes_per_image long; an upload
    may leave them undecoded (`raw_pixels` None) until a stream asks for an encoding other than
    the one it came in. `file` and `frame_number` are what clients see in PanoImage (file name
    and index, `uds_<dp>` and a per-(module, dp) counter, or what an uploader sent).
    `received_ns` is time.time_ns() at ingest. `header` is the PFF JSON header; None for an
    upload, whose header only ever travels in the serialized form it arrived in.
    """

    module_id: int
    dp: DataProduct
    header: dict[str, Any] | None
    raw_pixels: bytes | None
    file: str
    frame_number: int
    received_ns: int
    # The serialized PanoImage fields other than the pixels, built on first use.
    _metadata: bytes | None = field(default=None, init=False, repr=False, compare=False)
    # An upload's encoding: its payload in that encoding, the bytes it arrived as, is where the
    # metadata and, if not given, the pixels come from (decoded only if a stream needs them).
    _arrived_as: Encoding | None = field(default=None, init=False, repr=False, compare=False)
    # Per encoding, the serialized PanoImage (metadata + pixel fields), built on first use.
    _payloads: dict[Encoding, bytes] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def uploaded(
        cls,
        image: daq_data_pb2.PanoImage,
        dp: DataProduct,
        encoding: Encoding,
        payload: bytes,
        pixels: bytes | None,
    ) -> Frame:
        """An upload's validated `image` as a frame: `payload` (the image serialized, pixels in
        `encoding`) is its wire form in that encoding, so nothing is serialized again unless a
        stream asks for another; `pixels` None means they are read from image_array if needed."""
        frame = cls(
            image.module_id, dp, None, pixels, image.file, image.frame_number, time.time_ns()
        )
        frame._arrived_as = encoding
        frame._payloads[encoding] = payload
        return frame

    def _uploaded_image(self) -> daq_data_pb2.PanoImage:
        assert self._arrived_as is not None, "only an upload's frame has an uploaded image"
        return daq_data_pb2.PanoImage.FromString(self._payloads[self._arrived_as])

    @property
    def pixels(self) -> bytes:
        pixels = self.raw_pixels
        if pixels is None:
            pixels = self.raw_pixels = packed_to_raw(self.dp, self._uploaded_image().image_array)
        return pixels

    def metadata(self) -> bytes:
        data = self._metadata
        if data is None:
            if self._arrived_as is None:
                data = metadata_image(self).SerializeToString()
            else:
                data = without_pixels(self._uploaded_image()).SerializeToString()
            self._metadata = data
        return data

    def payload(self, encoding: Encoding = PACKED) -> bytes:
        """The serialized PanoImage in `encoding`, built once however many clients get it."""
        data = self._payloads.get(encoding)
        if data is None:
            data = self.metadata() + pixel_fields(self.dp, self.pixels, encoding)
            self._payloads[encoding] = data
        return data

    def pano_image_field(self, encoding: Encoding = PACKED) -> bytes:
        """The response's `pano_image` field (tag, length, PanoImage)."""
        return length_delimited(_PANO_IMAGE_TAG, self.payload(encoding))

    def pano_image(self, encoding: Encoding = PACKED) -> daq_data_pb2.PanoImage:
        """This frame as a PanoImage message (parsed from the cached wire form)."""
        return daq_data_pb2.PanoImage.FromString(self.payload(encoding))

    def response_bytes(self, sent_ns: int | None = None, encoding: Encoding = PACKED) -> bytes:
        """A serialized StreamImagesResponse: `timestamp` = send time, then `pano_image`."""
        return response_bytes((self,), encoding, 0, sent_ns)


def response_bytes(
    frames: Sequence[Frame], encoding: Encoding, frames_lost: int, sent_ns: int | None = None
) -> bytes:
    """A serialized StreamImagesResponse of `frames` (the first in pano_image, the rest in
    more_images), `frames_lost` (written only when non-zero, as proto3 does) and the send time."""
    ns = time.time_ns() if sent_ns is None else sent_ns
    seconds, nanos = divmod(ns, 1_000_000_000)
    stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos).SerializeToString()
    parts = [length_delimited(_TIMESTAMP_TAG, stamp)]
    first, *rest = frames
    parts.append(length_delimited(_PANO_IMAGE_TAG, first.payload(encoding)))
    if frames_lost:
        parts.append(_FRAMES_LOST_TAG + varint(frames_lost))
    parts.extend(length_delimited(_MORE_IMAGES_TAG, f.payload(encoding)) for f in rest)
    return b"".join(parts)


#: Where a source hands its frames. Called on the event loop; never blocks.
FrameSink = Callable[[Frame], None]
