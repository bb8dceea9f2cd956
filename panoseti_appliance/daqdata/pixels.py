"""Pixel encodings, shared by the daemon and the clients (docs/daqdata.md, "Pixel encodings").

PACKED is `image_array` (one varint per pixel, what original clients read); RAW is the PFF's
little-endian bytes in `pixel_data`; BLOSC_LZ4 and BLOSC_ZSTD are one blosc2 chunk of those
bytes (bitshuffle, typesize bytes_per_pixel). Both sides make and read the chunks here, so the
codec settings and the checks on a received chunk exist once. blosc2 is imported only by a
process that meets a compressed image.
"""

from __future__ import annotations

import functools
from typing import Any, TypeAlias

import numpy as np

from panoseti_appliance._proto import daq_data_pb2
from panoseti_appliance.products import DataProduct

#: A PanoImage.Encoding value (an int at run time).
Encoding: TypeAlias = daq_data_pb2.PanoImage.Encoding

PACKED: Encoding = daq_data_pb2.PanoImage.PACKED
RAW: Encoding = daq_data_pb2.PanoImage.RAW
BLOSC_LZ4: Encoding = daq_data_pb2.PanoImage.BLOSC_LZ4
BLOSC_ZSTD: Encoding = daq_data_pb2.PanoImage.BLOSC_ZSTD
ENCODINGS: tuple[Encoding, ...] = (PACKED, RAW, BLOSC_LZ4, BLOSC_ZSTD)
COMPRESSED: tuple[Encoding, ...] = (BLOSC_LZ4, BLOSC_ZSTD)
#: blosc2's compression level for the BLOSC_* encodings (its default).
BLOSC_CLEVEL = 5
#: Most bytes a chunk may unpack to when the image's shape does not say (a 32x32 image of
#: 2-byte pixels is 2 KiB; this is far above any data product).
MAX_UNSHAPED_BYTES = 1 << 20
#: The fields of a PanoImage that carry its pixels.
PIXEL_FIELDS = ("image_array", "pixel_data", "pixel_encoding")


def wire_dtype(bytes_per_pixel: int) -> np.dtype[Any]:
    """The unsigned little-endian dtype of the values `image_array` carries (PH as uint16)."""
    return np.dtype("<u2") if bytes_per_pixel == 2 else np.dtype("u1")


@functools.cache
def _varint_table() -> tuple[np.ndarray, np.ndarray]:
    """The varint bytes of every 16-bit value (up to 3, padded) and which of them are used."""
    values = np.arange(1 << 16, dtype=np.uint32)
    more1, more2 = values >= 0x80, values >= 0x4000
    table = np.empty((1 << 16, 3), dtype=np.uint8)
    table[:, 0] = (values & 0x7F) | (more1 << 7)
    table[:, 1] = ((values >> 7) & 0x7F) | (more2 << 7)
    table[:, 2] = values >> 14
    used = np.arange(3) < (1 + more1 + more2)[:, None]
    return table, used


def packed_varints(dp: DataProduct, pixels: bytes) -> bytes:
    """The contents of a PACKED image's `image_array` field for these raw pixel bytes.

    The same bytes protobuf writes, made by table look-up in numpy: protobuf would first turn
    the 1 024 values into Python integers, which took about half of what every-frame streams
    and the first send of each frame cost the daemon.
    """
    table, used = _varint_table()
    values = np.frombuffer(pixels, dtype=wire_dtype(dp.bytes_per_pixel))
    return bytes(table[values][used[values]].tobytes())


def compress(dp: DataProduct, pixels: bytes, encoding: Encoding) -> bytes:
    """One blosc2 chunk of `pixels` for BLOSC_LZ4 or BLOSC_ZSTD."""
    import blosc2

    codec = blosc2.Codec.LZ4 if encoding == BLOSC_LZ4 else blosc2.Codec.ZSTD
    chunk: bytes = blosc2.compress2(
        pixels,
        typesize=dp.bytes_per_pixel,
        clevel=BLOSC_CLEVEL,
        filters=[blosc2.Filter.BITSHUFFLE],
        codec=codec,
    )
    return chunk


def decompress(chunk: bytes, expected: int | None) -> bytes:
    """The bytes in one blosc2 `chunk`, which must unpack to exactly `expected` bytes (None:
    at most MAX_UNSHAPED_BYTES). The sizes its header states are checked before anything is
    decompressed, so a hostile chunk claiming gigabytes costs nothing. ValueError says what is
    wrong, starting "pixel_data"."""
    import blosc2

    try:
        nbytes, cbytes, _ = blosc2.get_cbuffer_sizes(chunk)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ValueError(f"pixel_data is not a blosc2 chunk ({exc})") from None
    if cbytes != len(chunk) or cbytes == 0:
        raise ValueError(
            f"pixel_data is not a blosc2 chunk (its header gives a length of {cbytes} bytes; "
            f"{len(chunk)} were sent); send one blosc2.compress2() result"
        )
    if nbytes != expected and (expected is not None or nbytes > MAX_UNSHAPED_BYTES):
        need = f"{expected}" if expected is not None else f"at most {MAX_UNSHAPED_BYTES}"
        raise ValueError(f"pixel_data is a blosc2 chunk of {nbytes} bytes; {need} are needed")
    try:
        data: bytes = blosc2.decompress2(chunk)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"pixel_data does not decompress ({exc})") from None
    if len(data) != nbytes:
        raise ValueError(f"pixel_data gave {len(data)} bytes; its header said {nbytes}")
    return data


def without_pixels(image: daq_data_pb2.PanoImage) -> daq_data_pb2.PanoImage:
    """A copy of `image` with no pixels in any form."""
    bare = daq_data_pb2.PanoImage()
    bare.CopyFrom(image)
    for name in PIXEL_FIELDS:
        bare.ClearField(name)
    return bare
