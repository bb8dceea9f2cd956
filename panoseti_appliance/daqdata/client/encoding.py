"""How a PanoImage carries its pixels, from the client's side (docs/clients.md, "Pixel encodings
and every frame").

PACKED (one varint per pixel in `image_array`) is what every original client reads; RAW carries
the PFF's own little-endian bytes in `pixel_data`, and BLOSC_LZ4/BLOSC_ZSTD one blosc2 chunk of
those bytes for slow links. This module names the encodings for the options of both clients and
the CLI, picks one per server when the caller does not, reads the pixel bytes back out of an
image, and re-encodes images before an upload. RAW is the cheapest to make and to read but can
be larger than PACKED on the wire (a small pulse height is one varint byte instead of two), so
the automatic choice takes it only where bytes cost nothing: a server on the same machine.
"""

from __future__ import annotations

import ipaddress

import numpy as np

from panoseti_appliance._proto import daq_data_pb2
from panoseti_appliance.daqdata.pixels import (
    BLOSC_LZ4,
    BLOSC_ZSTD,
    COMPRESSED,
    PACKED,
    RAW,
    Encoding,
    compress,
    decompress,
    wire_dtype,
    without_pixels,
)
from panoseti_appliance.products import by_layout

#: The names the clients' `encoding` options take.
ENCODING_NAMES: dict[str, Encoding] = {
    "packed": PACKED,
    "raw": RAW,
    "lz4": BLOSC_LZ4,
    "zstd": BLOSC_ZSTD,
}
#: The names of the `compression` options: blosc2 chunks of the raw bytes.
COMPRESSION_NAMES: dict[str, Encoding] = {"lz4": BLOSC_LZ4, "zstd": BLOSC_ZSTD}
#: `encoding=` values that mean "choose per server" (see `stream_encoding`).
AUTO = frozenset({None, "auto"})

_U1, _U2, _I2 = np.dtype("u1"), np.dtype("<u2"), np.dtype("<i2")


def is_local(target: str) -> bool:
    """True for a unix socket or a loopback address (127.0.0.0/8, ::1, localhost)."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    host = target.removeprefix("dns:///").removeprefix("ipv4:").removeprefix("ipv6:")
    if host.startswith("["):
        host = host[1 : host.find("]")]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def stream_encoding(target: str, encoding: str | None, compression: str | None) -> Encoding:
    """The pixel encoding a stream asks `target` for.

    `encoding` is "packed", "raw", "lz4", "zstd", or None/"auto": RAW for a server on this
    machine (`is_local`), PACKED otherwise. `compression` ("lz4", "zstd") asks for that blosc2
    chunk of the raw bytes whatever `encoding` chose, except with an explicit "packed".
    """
    chosen = None if encoding in AUTO else encoding_named(encoding)
    if compression is not None:
        compressed = COMPRESSION_NAMES.get(compression)
        if compressed is None:
            raise ValueError(
                f"compression must be one of {', '.join(COMPRESSION_NAMES)}, not {compression!r}"
            )
        if chosen is not None and chosen not in (RAW, compressed):
            raise ValueError(
                f"compression={compression!r} compresses the raw pixel bytes; it cannot be "
                f"combined with encoding={encoding!r}"
            )
        return compressed
    if chosen is None:
        return RAW if is_local(target) else PACKED
    return chosen


def encoding_named(name: str | None) -> Encoding:
    """The encoding of one of ENCODING_NAMES."""
    if name is None or name not in ENCODING_NAMES:
        raise ValueError(f"encoding must be one of {', '.join(ENCODING_NAMES)}, not {name!r}")
    return ENCODING_NAMES[name]


def pixel_dtype(pano_image: daq_data_pb2.PanoImage) -> np.dtype:
    """uint8 (bpp 1), int16 (PULSE_HEIGHT, bpp 2) or uint16 (bpp 2), little-endian."""
    bpp = pano_image.bytes_per_pixel
    if bpp == 1:
        return _U1
    if bpp == 2:
        return _I2 if pano_image.type == daq_data_pb2.PanoImage.PULSE_HEIGHT else _U2
    raise ValueError(f"bytes_per_pixel {bpp} is not 1 or 2")


def expected_bytes(pano_image: daq_data_pb2.PanoImage) -> int:
    """How many pixel bytes `shape` and `bytes_per_pixel` call for."""
    count = 1
    for dim in pano_image.shape:
        count *= dim
    return count * pano_image.bytes_per_pixel


def pixel_data_bytes(pano_image: daq_data_pb2.PanoImage) -> bytes:
    """The raw little-endian pixel bytes of a RAW or BLOSC_* image, checked against its shape.

    ValueError for a PACKED image, an encoding this client does not know, a pixel_data whose
    length (or decompressed length) is not what shape and bytes_per_pixel call for, or a chunk
    blosc2 cannot read. A chunk's stated size is checked before decompressing, so a hostile
    one cannot make the client allocate more than one image.
    """
    encoding = pano_image.pixel_encoding
    data: bytes = pano_image.pixel_data
    expected = expected_bytes(pano_image) if pano_image.shape else None
    if encoding == RAW:
        if expected is not None and len(data) != expected:
            raise ValueError(
                f"RAW pixel_data has {len(data)} bytes; shape {list(pano_image.shape)} at "
                f"{pano_image.bytes_per_pixel} bytes per pixel needs {expected}"
            )
        return data
    if encoding in COMPRESSED:
        return decompress(data, expected)
    if encoding == PACKED:
        raise ValueError("a PACKED image carries its pixels in image_array, not pixel_data")
    raise ValueError(f"unknown pixel_encoding {encoding}")


def packed_bytes(pano_image: daq_data_pb2.PanoImage) -> bytes:
    """The raw bytes of a PACKED image's `image_array` (values checked against the pixel width)."""
    width = pano_image.bytes_per_pixel
    if width not in (1, 2):
        raise ValueError(f"bytes_per_pixel {width} is not 1 or 2")
    wire = np.asarray(pano_image.image_array, dtype=np.int64)
    if pano_image.shape and wire.size * width != expected_bytes(pano_image):
        raise ValueError(
            f"image_array has {wire.size} values; shape {list(pano_image.shape)} needs "
            f"{expected_bytes(pano_image) // width}"
        )
    if wire.size and int(wire.max()) >= 1 << (8 * width):
        raise ValueError(f"image_array holds a value that does not fit {width} bytes per pixel")
    return wire.astype(wire_dtype(width)).tobytes()


def encode_image(pano_image: daq_data_pb2.PanoImage, encoding: Encoding) -> daq_data_pb2.PanoImage:
    """`pano_image` with its pixels in `encoding` (the same message when they already are).

    For an upload: the raw bytes are taken from whichever form the image has and written in the
    requested one; the other fields are copied unchanged.
    """
    if pano_image.pixel_encoding == encoding:
        return pano_image
    if pano_image.pixel_encoding == PACKED:
        raw = packed_bytes(pano_image)
    else:
        raw = pixel_data_bytes(pano_image)
    out = without_pixels(pano_image)
    if encoding == PACKED:
        unsigned = wire_dtype(pano_image.bytes_per_pixel)
        out.image_array.extend(np.frombuffer(raw, unsigned).tolist())
    elif encoding == RAW:
        out.pixel_data = raw
        out.pixel_encoding = RAW
    else:
        dp = by_layout(pano_image.type, list(pano_image.shape), pano_image.bytes_per_pixel)
        out.pixel_data = compress(dp, raw, encoding)
        out.pixel_encoding = encoding
    return out
