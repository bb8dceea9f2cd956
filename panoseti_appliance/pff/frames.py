"""Reading PFF frames: parse one, iterate a file or stream, count a file's frames.

A PFF file is a bare concatenation of frames with no file header, index or length prefix, so
this reader is defensive: the pixel count comes from the data product, the header length is
learned per file (never hard-coded), every malformed input raises a `PffError` naming file,
offset and reason, and every loop either consumes bytes or stops, so no input can make a
reader spin.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from panoseti_appliance.pff.errors import PffError
from panoseti_appliance.pff.layout import HEADER_END, MAX_HEADER_BYTES
from panoseti_appliance.pff.names import parse_data_file_name
from panoseti_appliance.products import DataProduct, UnknownDataProduct, by_name

_READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class PffFrame:
    """One frame: the exact header dict, the header's raw JSON text and the raw pixel bytes."""

    dp: DataProduct
    header: dict[str, Any]
    header_json: bytes
    pixels: bytes
    index: int
    offset: int

    @property
    def size(self) -> int:
        """Bytes this frame occupies in its file (JSON + 3 + pixels)."""
        return len(self.header_json) + len(HEADER_END) + len(self.pixels)

    @property
    def end(self) -> int:
        """Offset just past this frame."""
        return self.offset + self.size

    def image(self) -> np.ndarray:
        """Pixels as a new, writable (rows, cols) array in the product's user dtype (int16 for
        pulse height), decoded little-endian whatever the host's byte order."""
        raw = np.frombuffer(self.pixels, dtype=self.dp.raw_dtype)
        return raw.astype(self.dp.dtype).reshape(self.dp.shape)


def parse_frame(
    buf: bytes | bytearray | memoryview,
    dp: DataProduct,
    *,
    offset: int = 0,
    index: int = 0,
    file: str | None = None,
) -> PffFrame | None:
    """Parse the frame starting at buf[offset:].

    Leading b"\\n" bytes before "{" are skipped. Returns None when the buffer ends before the
    frame does (incomplete: more bytes may come). Raises PffError for malformed input (missing
    "*", non-JSON header, header not an object, no header end within MAX_HEADER_BYTES).
    """
    data = bytes(buf) if isinstance(buf, memoryview) else buf
    n = len(data)
    pos = offset
    while pos < n and data[pos] == 0x0A:
        pos += 1
    if pos >= n:
        return None
    if data[pos] != 0x7B:  # "{"
        raise PffError(
            "header is not a JSON object: expected '{' at the start of a frame, found "
            f"byte 0x{data[pos]:02x}",
            file=file,
            offset=pos,
        )
    limit = min(n, pos + MAX_HEADER_BYTES + 2)
    h = data.find(b"\n\n", pos, limit)
    if h < 0:
        if n - pos < MAX_HEADER_BYTES + 2:
            return None
        raise PffError(
            f"no end of header (blank line) within {MAX_HEADER_BYTES} bytes", file=file, offset=pos
        )
    if h + 2 >= n:
        return None
    if data[h + 2] != 0x2A:  # "*"
        raise PffError(
            f"missing '*' image marker after the header (found byte 0x{data[h + 2]:02x})",
            file=file,
            offset=h + 2,
        )
    header_json = bytes(data[pos:h])
    try:
        header = json.loads(header_json)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # RecursionError: a corrupt header can nest brackets deeper than the JSON decoder allows.
        raise PffError(f"header is not valid JSON: {exc}", file=file, offset=pos) from None
    if not isinstance(header, dict):
        raise PffError("header is not a JSON object", file=file, offset=pos)
    end = h + 3 + dp.bytes_per_image
    if end > n:
        return None
    return PffFrame(dp, header, header_json, bytes(data[h + 3 : end]), index, pos)


def frame_at(data: bytes, dp: DataProduct, offset: int, file: str) -> PffFrame | None:
    """The complete frame starting at data[offset:], or None (incomplete or malformed).

    For probing a guessed offset (count_frames, FileTail), where malformed means "guess wrong".
    """
    try:
        return parse_frame(data, dp, offset=offset, file=file)
    except PffError:
        return None


def resolve_data_product(source: object, dp: DataProduct | None = None) -> DataProduct:
    """`dp` if given, else the product named by the file name's `dp_` piece; PffError otherwise."""
    if dp is not None:
        return dp
    if isinstance(source, (str, os.PathLike)):
        name = parse_data_file_name(source)
        if name is None:
            raise PffError(
                "unknown data product: the file name has no 'dp_<product>' piece; pass the "
                "data product explicitly",
                file=source,
            )
        try:
            return by_name(name.dp)
        except UnknownDataProduct as exc:
            raise PffError(str(exc), file=source) from None
    raise PffError("unknown data product: pass dp for a stream or bytes source")


def iter_frames(
    source: str | os.PathLike[str] | BinaryIO | bytes,
    dp: DataProduct | None = None,
    *,
    strict: bool = True,
) -> Iterator[PffFrame]:
    """Yield every complete frame; dp defaults to the one in the file name.

    A trailing partial frame raises PffError("truncated …") with strict, else ends the iteration.
    """
    product = resolve_data_product(source, dp)
    file = str(source) if isinstance(source, (str, os.PathLike)) else None
    if isinstance(source, (bytes, bytearray)):
        yield from _iter_stream(io.BytesIO(source), product, file, strict)
        return
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            yield from _iter_stream(fh, product, file, strict)
        return
    yield from _iter_stream(source, product, file, strict)


def _iter_stream(
    fh: BinaryIO, dp: DataProduct, file: str | None, strict: bool
) -> Iterator[PffFrame]:
    # read1 returns what is available instead of waiting for a full chunk (pipes, sockets).
    read = getattr(fh, "read1", fh.read)
    buf = bytearray()
    base = 0  # file offset of buf[0]
    index = 0
    eof = False
    while True:
        try:
            frame = parse_frame(buf, dp, index=index, file=file) if buf else None
        except PffError as exc:  # offsets in buf are relative; report the file offset
            at = None if exc.offset is None else base + exc.offset
            raise PffError(exc.reason, file=file, offset=at) from None
        if frame is not None:
            yield PffFrame(
                dp, frame.header, frame.header_json, frame.pixels, index, base + frame.offset
            )
            index += 1
            del buf[: frame.end]
            base += frame.end
            continue
        if eof:
            rest = bytes(buf).strip(b"\n")
            if rest and strict:
                raise PffError(
                    f"truncated frame: {len(buf)} bytes after the last complete frame "
                    f"(frame {index}) do not make a whole {dp.name} frame",
                    file=file,
                    offset=base,
                )
            return
        chunk = read(_READ_CHUNK)
        if not chunk:
            eof = True
        else:
            buf += chunk


def learn_frame_size(head: bytes, dp: DataProduct, *, file: str | None = None) -> int | None:
    """Frame size from the first frame's header length; None while the first header is incomplete."""
    frame = parse_frame(head, dp, file=file)
    return None if frame is None else frame.size


def count_frames(path: str | os.PathLike[str], dp: DataProduct | None = None) -> int:
    """Number of complete frames, using the frame size learned from the first frame and verified."""
    product = resolve_data_product(path, dp)
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(MAX_HEADER_BYTES + 3 + product.bytes_per_image)
        first = parse_frame(head, product, file=str(path))
        if first is None:
            return 0
        n = (size - first.offset) // first.size
        offset = first.offset + (n - 1) * first.size
        fh.seek(offset)
        rest = fh.read(size - offset)  # the last slot plus the partial tail: under two frames
    frame = frame_at(rest, product, 0, str(path))
    if (
        frame is not None
        and frame.offset == 0
        and frame.size == first.size
        and frame_at(rest, product, frame.end, str(path)) is None  # no narrower frame after it
    ):
        return n
    return sum(1 for _ in iter_frames(path, product, strict=False))
