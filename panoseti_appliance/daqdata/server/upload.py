"""UploadImages' images: validated from the request, forwarded in the bytes they came in.

Every check that protects clients runs on each image (docs/daqdata.md, "UploadImages"), in the
order the document lists the reasons, but nothing is converted that a stream does not need. A
request is first read through the view of upload_view.py, whose image_array is the packed
varints' bytes: when its bytes are the canonical serialization of what was parsed (what every
protobuf library writes) and every image passes, each image's own bytes become its wire form in
the encoding it was sent in, the header stays the Struct it arrived as, and nothing is decoded or
serialized again. Anything else (a non-canonical request, an invalid image) goes through the
real UploadImageRequest, which decodes the values and names what is wrong.
"""

from __future__ import annotations

import re

import numpy as np
from google.protobuf.message import DecodeError

from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance.daqdata.pixels import (
    ENCODINGS,
    PACKED,
    RAW,
    Encoding,
    decompress,
    wire_dtype,
)
from panoseti_appliance.daqdata.server.frame import Frame
from panoseti_appliance.daqdata.server.upload_view import UploadImageRequestView, viewed_packed
from panoseti_appliance.daqdata.server.wire import embedded_messages, field_bytes
from panoseti_appliance.products import DataProduct, UnknownDataProduct, by_layout

MAX_MODULE_ID = 65535
#: Longest `file` an uploaded image may name, in UTF-8 bytes (Linux PATH_MAX).
MAX_UPLOAD_FILE_BYTES = 4096
#: UploadImageRequest's fields: 1 pano_image, 2 more_images; PanoImage's 3 is image_array.
_PANO_IMAGE, _MORE_IMAGES = 1, 2
_IMAGE_ARRAY = 3
#: Each byte of packed varints as a letter: "c" continues the varint (bit 7 set); the last byte
#: of a varint is "z" when it is 0, "l" when it keeps the value within the pixel width at that
#: position and "h" otherwise. A "c" before a "z" is a value written longer than protobuf
#: writes it; too big by bytes_per_pixel: 16 bits allow at most 3 bytes whose third carries
#: only bits 14 and 15 (at most 3); 8 bits allow at most 2 bytes whose second carries only
#: bit 7 (at most 1). One regular expression finds any of these runs in one pass.
_LOW_LAST = {2: 3, 1: 1}
_LETTERS = {
    bpp: bytes.maketrans(
        bytes(range(256)),
        bytes(
            ord("z") if b == 0 else ord("l") if b <= low else ord("h") if b < 0x80 else ord("c")
            for b in range(256)
        ),
    )
    for bpp, low in _LOW_LAST.items()
}
_NOT_CANONICAL_OR_TOO_BIG = {2: re.compile(b"cz|cc[ch]"), 1: re.compile(b"cz|c[ch]")}


class InvalidUpload(ValueError):
    """One uploaded image is invalid; str(err) is the reason after "image i: ", `field` the part
    of the image at fault (the label of the refused-uploads metric), `position` the image's place
    in its request (0 is pano_image, then more_images)."""

    def __init__(self, message: str, field: str, position: int = 0) -> None:
        super().__init__(message)
        self.field = field
        self.position = position


class _Undecided(Exception):
    """The view cannot judge an image; the decoded request does, and says what is wrong."""


def viewed_frames(data: bytes, max_header_bytes: int) -> list[Frame] | None:
    """The frames of the UploadImageRequest `data`, read through the view; None when the view
    cannot decide (bytes protobuf would write differently, or an invalid image): upload_frames
    on the decoded request then gives the frames or the reason they are refused."""
    try:
        view = UploadImageRequestView.FromString(data)
    except DecodeError:
        return None
    view.DiscardUnknownFields()
    if not view.HasField("pano_image") or view.ByteSize() != len(data):
        return None
    spans = embedded_messages(data)
    images = [view.pano_image, *view.more_images]
    if spans is None or len(spans) != len(images):
        return None
    try:
        return [
            image_frame(image, data[start:end], max_header_bytes)
            for image, (_, start, end) in zip(images, spans, strict=True)
        ]
    except (InvalidUpload, _Undecided):
        return None


def upload_frames(
    request: pb.UploadImageRequest, data: bytes, max_header_bytes: int
) -> list[Frame]:
    """The frames of one UploadImages request (`request` is `data` parsed), each validated.

    Every part of an image is bounded (pixels by its product, `header` by `max_header_bytes`,
    `file` by MAX_UPLOAD_FILE_BYTES, unknown fields dropped), so the response streaming it stays
    far below the 4 MB a default gRPC client accepts.
    """
    if not request.HasField("pano_image"):
        raise InvalidUpload(
            "pano_image is not set; put the image in UploadImageRequest.pano_image", "pano_image"
        )
    images = [request.pano_image, *request.more_images]
    spans = embedded_messages(data)
    in_order = [_PANO_IMAGE] + [_MORE_IMAGES] * (len(images) - 1)
    sents: list[bytes | None] = [None] * len(images)
    if spans is not None and [number for number, _, _ in spans] == in_order:
        sents = [data[start:end] for _, start, end in spans]
    frames = []
    for position, (image, sent) in enumerate(zip(images, sents, strict=True)):
        image.DiscardUnknownFields()
        if sent is None or image.ByteSize() != len(sent):
            sent = image.SerializeToString()  # not canonical, or unknown fields were dropped
        try:
            frames.append(image_frame(image, sent, max_header_bytes))
        except InvalidUpload as exc:
            exc.position = position
            raise
    return frames


def image_frame(image: pb.PanoImage, sent: bytes, max_header_bytes: int) -> Frame:
    """One uploaded PanoImage (real or view) as a Frame; `sent` is its canonical bytes."""
    if image.type == pb.PanoImage.UNDEFINED:
        raise InvalidUpload("type is UNDEFINED; set MOVIE or PULSE_HEIGHT", "type")
    try:
        dp = by_layout(image.type, image.shape, image.bytes_per_pixel)
    except UnknownDataProduct as exc:
        raise InvalidUpload(str(exc), "layout") from None
    encoding = image.pixel_encoding
    pixels = _pixels(image, dp, encoding, sent)
    if image.module_id > MAX_MODULE_ID:
        raise InvalidUpload(f"module_id {image.module_id} is above {MAX_MODULE_ID}", "module_id")
    header_bytes = image.header.ByteSize()
    if header_bytes > max_header_bytes:
        raise InvalidUpload(
            f"header is {header_bytes} bytes serialized; at most {max_header_bytes} are accepted "
            "(daqdata.max_upload_header_bytes)",
            "header",
        )
    file_bytes = len(image.file.encode())
    if file_bytes > MAX_UPLOAD_FILE_BYTES:
        raise InvalidUpload(f"file is {file_bytes} bytes; at most {MAX_UPLOAD_FILE_BYTES}", "file")
    return Frame.uploaded(image, dp, encoding, sent, pixels)


def _pixels(image: pb.PanoImage, dp: DataProduct, encoding: Encoding, sent: bytes) -> bytes | None:
    """The image's raw little-endian pixel bytes, checked against its data product; None for
    PACKED pixels found valid on the wire (the frame decodes them only if a stream needs them)."""
    if encoding not in ENCODINGS:
        raise InvalidUpload(
            f"pixel_encoding {encoding} is unknown; use PACKED, RAW, BLOSC_LZ4 or BLOSC_ZSTD",
            "pixel_encoding",
        )
    if encoding == PACKED:
        if image.pixel_data:
            raise InvalidUpload(
                f"pixel_data has {len(image.pixel_data)} bytes but pixel_encoding is PACKED; "
                "set pixel_encoding to what pixel_data holds, or send the pixels in image_array",
                "pixel_data",
            )
        viewed = viewed_packed(image)
        packed = field_bytes(sent, _IMAGE_ARRAY) if viewed is None else viewed
        if packed is not None and _packed_fit(packed, dp):
            return None
        if viewed is not None:
            raise _Undecided
        return _packed_pixels(image, dp)  # the values themselves, to say what is wrong
    name = pb.PanoImage.Encoding.Name(encoding)
    if len(image.image_array):
        raise InvalidUpload(
            f"image_array has {len(image.image_array)} values but pixel_encoding is {name}; "
            "send the pixels in pixel_data only",
            "image_array",
        )
    if encoding == RAW:
        pixels = image.pixel_data
    else:
        try:
            pixels = decompress(image.pixel_data, dp.bytes_per_image)
        except ValueError as exc:
            raise InvalidUpload(f"{exc} ({dp.name})", "pixel_data") from None
    if len(pixels) != dp.bytes_per_image:
        raise InvalidUpload(
            f"pixel_data holds {len(pixels)} bytes of pixels; {dp.name} ({dp.rows}x{dp.cols}, "
            f"{dp.bytes_per_pixel} bytes each) needs exactly {dp.bytes_per_image}",
            "pixel_data",
        )
    return pixels


def _packed_fit(packed: bytes, dp: DataProduct) -> bool:
    """True when the packed varints of image_array are exactly dp.pixels values, each written as
    protobuf writes it and all within bytes_per_pixel; checked on the bytes, far cheaper than
    turning 1 024 values into objects. False sends the image to the decoded values."""
    bpp = dp.bytes_per_pixel
    letters = packed.translate(_LETTERS[bpp])
    if len(letters) - letters.count(b"c") != dp.pixels or letters.endswith(b"c"):
        return False
    return _NOT_CANONICAL_OR_TOO_BIG[bpp].search(letters) is None


def _packed_pixels(image: pb.PanoImage, dp: DataProduct) -> bytes:
    if len(image.image_array) != dp.pixels:
        raise InvalidUpload(
            f"image_array has {len(image.image_array)} values; {dp.name} "
            f"({dp.rows}x{dp.cols}) needs exactly {dp.pixels}",
            "image_array",
        )
    values = np.array(image.image_array, dtype=np.uint32)
    if int(values.max()) > dp.max_wire_value:
        index = int(np.argmax(values > dp.max_wire_value))
        raise InvalidUpload(
            f"image_array[{index}] = {int(values[index])} does not fit bytes_per_pixel "
            f"{dp.bytes_per_pixel} (maximum {dp.max_wire_value})",
            "image_array",
        )
    return values.astype(wire_dtype(dp.bytes_per_pixel)).tobytes()
