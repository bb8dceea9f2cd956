"""PFF frames: read, write, find the last complete frame, names, White Rabbit time (docs/pff.md).

A PFF file is a bare concatenation of frames (`JSON header` `\\n\\n*` `pixels`) with no file header,
index or length prefix, so everything here is defensive: the pixel count comes from the data
product, the header length is learned per file (never hard-coded), every malformed input raises a
`PffError` naming file, offset and reason, and every loop either consumes bytes or stops, so no
input can make a reader spin.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import operator
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from panoseti_appliance.products import DataProduct, UnknownDataProduct, by_name

#: Bytes between the JSON header and the pixels.
HEADER_END = b"\n\n*"
#: TAI - UTC, fixed (docs/pff.md, "Two clocks: host time and White Rabbit time").
TAI_UTC_OFFSET_S = 37
#: Longest JSON header we accept while looking for HEADER_END.
MAX_HEADER_BYTES = 4096
#: Timing fields of every quabo record.
TIME_FIELDS = ("pkt_num", "pkt_tai", "pkt_nsec", "tv_sec", "tv_usec")
QUABO_KEYS = ("quabo_0", "quabo_1", "quabo_2", "quabo_3")
#: Deepest nesting of objects and arrays a header may have. Real headers nest two deep; a
#: header travels as a protobuf Struct, whose decoders refuse nesting of about 50 levels, so a
#: much deeper header could be ingested but never delivered to any client.
MAX_HEADER_DEPTH = 8
_READ_CHUNK = 1 << 20
_NS = 10**9

HeaderLayout = Literal["file", "socket"]


class PffError(ValueError):
    """A malformed PFF input; the message names file, offset and reason."""

    def __init__(
        self,
        reason: str,
        *,
        file: str | os.PathLike[str] | None = None,
        offset: int | None = None,
    ) -> None:
        self.reason = reason
        self.file = None if file is None else str(file)
        self.offset = offset
        where = self.file or "<stream>"
        at = "" if offset is None else f" at offset {offset}"
        super().__init__(f"{where}{at}: {reason}")


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


@dataclass(frozen=True, slots=True)
class WrTime:
    """White Rabbit time of a frame: exact integer ns, or desync (no WR time)."""

    unix_ns: int | None
    desync: bool

    @property
    def decimal(self) -> decimal.Decimal:
        """Seconds as an exact Decimal; Decimal(0) on desync (client compatibility)."""
        if self.unix_ns is None:
            return decimal.Decimal(0)
        return decimal.Decimal(self.unix_ns).scaleb(-9)


@dataclass(frozen=True, slots=True)
class DataFileName:
    """The pieces of `start_<t>.dp_<dp>.bpp_<n>.module_<id>.seqno_<n>[.extra].pff` or `sim.…`."""

    dp: str
    module: int | None
    seqno: int
    start: str | None
    bpp: int | None
    sim: bool
    pieces: dict[str, str]

    @property
    def start_time(self) -> dt.datetime | None:
        """The `start` piece as an aware UTC datetime (colon, underscore or hyphen spellings)."""
        return parse_start_time(self.start) if self.start else None


_START_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})[:_-](\d{2})[:_-](\d{2})(?:\.\d+)?Z?$")


def parse_start_time(text: str) -> dt.datetime | None:
    """`2025-08-02T05:31:36Z`, `…T05_31_36Z` or `…T05-31-36Z` → UTC datetime; None if not a time."""
    m = _START_RE.match(text.strip())
    if not m:
        return None
    try:
        return dt.datetime.fromisoformat(f"{m[1]}T{m[2]}:{m[3]}:{m[4]}+00:00")
    except ValueError:
        return None


def header_problem(header: Any, dp: DataProduct) -> str | None:
    """Why `header` is not a valid header of `dp`, or None when it is.

    ph256 headers are flat with `quabo_num`; the 4-quabo products have `quabo_0..quabo_3`
    objects. Every packet/time field must be an integer, as every producer writes them: the
    file tail, the Hashpipe socket reader and the simulator all judge frames by this one rule.
    The whole header must also survive the trip to clients as a protobuf Struct (see
    `wire_problem`), so that no accepted frame can break the streams that send it.
    """
    if _well_formed(header, dp):
        return None
    if not isinstance(header, Mapping):
        return "header is not a JSON object"
    problem = wire_problem(header)
    if problem is not None:
        return problem
    groups: list[tuple[str, Any]]
    if dp.name == "ph256":
        groups = [("", header)]
        missing = [] if "quabo_num" in header else ["quabo_num"]
    else:
        groups = [(f"{k}.", header.get(k)) for k in QUABO_KEYS]
        missing = [k for k in QUABO_KEYS if not isinstance(header.get(k), Mapping)]
    if missing:
        return f"{dp.name} header lacks {', '.join(missing)}"
    for prefix, group in groups:
        for key in TIME_FIELDS:
            value = group.get(key)
            if not isinstance(value, int) or isinstance(value, bool):
                return f"{dp.name} header field {prefix}{key} is missing or not an integer"
    return None


#: Integers at or beyond this magnitude do not fit a double (they round up to 2**1024).
_DOUBLE_LIMIT = 2**1024 - 2**970
_TIME_VALUES = operator.itemgetter(*TIME_FIELDS)
_QUABO_GROUPS = operator.itemgetter(*QUABO_KEYS)
_INT_ONLY = {int}


def _well_formed(header: Any, dp: DataProduct) -> bool:
    """True for a valid header of the usual shape, checked with C-level calls because every
    ingested frame passes here: the product's groups and nothing else, each an object of
    numbers within the double range with integer time fields. False means "spell out the
    problem" (header_problem's full checks), not "invalid"."""
    try:
        if dp.name == "ph256":
            if "quabo_num" not in header:
                return False
            groups = (header,)
        else:
            groups = _QUABO_GROUPS(header)
            if len(header) != len(groups):
                return False
        for group in groups:
            if set(map(type, _TIME_VALUES(group))) != _INT_ONLY:
                return False
            if max(map(abs, group.values())) >= _DOUBLE_LIMIT:
                return False
    except (KeyError, TypeError, IndexError):  # e.g. a string value: the full checks decide
        return False
    return True


def wire_problem(value: Any) -> str | None:
    """Why a decoded JSON header cannot become a protobuf Struct that clients can read, or None.

    Struct numbers are doubles, so an integer beyond the double range (JSON allows any number of
    digits) cannot be converted; nesting deeper than MAX_HEADER_DEPTH is refused too. Valid
    headers of the usual shape never get here (header_problem's `_well_formed` answers first);
    the walk builds no strings unless it finds a problem, whose path it then spells out.
    """
    found = _wire_fault(value, 0)
    if found is None:
        return None
    path, deep = found
    where = "".join(reversed(path)).lstrip(".")
    if deep:
        return f"header nests deeper than {MAX_HEADER_DEPTH} levels at {where}"
    return f"header field {where} is an integer too large for a double"


def _wire_fault(value: Any, depth: int) -> tuple[list[str], bool] | None:
    """(path pieces innermost first, True if too deep) of the first fault in `value`, or None."""
    if isinstance(value, Mapping):
        items: Any = value.items()
        container = True
    elif isinstance(value, list):
        items = enumerate(value)
        container = False
    else:
        if type(value) is int and not -_DOUBLE_LIMIT < value < _DOUBLE_LIMIT:
            return [], False
        return None
    if depth >= MAX_HEADER_DEPTH:
        return [], True
    for key, child in items:
        found = _wire_fault(child, depth + 1)
        if found is not None:
            found[0].append(f".{key}" if container else f"[{key}]")
            return found
    return None


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
    frame = _frame_at(rest, product, 0, str(path))
    if (
        frame is not None
        and frame.offset == 0
        and frame.size == first.size
        and _frame_at(rest, product, frame.end, str(path)) is None  # no narrower frame after it
    ):
        return n
    return sum(1 for _ in iter_frames(path, product, strict=False))


def _frame_at(data: bytes, dp: DataProduct, offset: int, file: str) -> PffFrame | None:
    """The complete frame starting at data[offset:], or None (incomplete or malformed)."""
    try:
        return parse_frame(data, dp, offset=offset, file=file)
    except PffError:
        return None


class FileTail:
    """Follow one growing file and return its last complete frame.

    Keeps (inode, frame_size, last good offset and index) between calls, so a call normally reads
    only the last frame (plus the first frame once per file). A changed inode or a shrunken file
    resets it. When the size arithmetic does not land on a valid frame (a header changed width, a
    frame is half rewritten), the call scans sequentially from the last good offset instead, and
    the next call tries the arithmetic again. If the bytes at the last good offset are no longer a
    frame start, the file was rewritten in place: the state is dropped and the file rescanned
    (once per change of size or mtime, so a corrupt file is not re-read on every call).
    Blocking: call it from a worker thread.
    """

    def __init__(self, path: str | os.PathLike[str], dp: DataProduct) -> None:
        self.path = Path(path)
        self.dp = dp
        self._inode: int | None = None
        self._size = 0
        self._mtime_ns = 0
        self._forget()

    def _forget(self) -> None:
        self._first_offset = 0
        self._frame_size: int | None = None
        self._good_offset = 0  # frames before this offset were read and are valid
        self._good_index = 0  # index of the frame starting at _good_offset
        self._last: PffFrame | None = None

    def last_frame(self) -> PffFrame | None:
        """The newest complete, valid frame (possibly the same as last time), or None."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._inode = None
            self._forget()
            return None
        if st.st_ino != self._inode or st.st_size < self._size:
            self._inode = st.st_ino
            self._forget()
        changed = (st.st_size, st.st_mtime_ns) != (self._size, self._mtime_ns)
        self._size, self._mtime_ns = st.st_size, st.st_mtime_ns
        with open(self.path, "rb") as fh:
            if self._frame_size is None and not self._learn(fh):
                return None
            frame = self._by_size(fh, st.st_size)
            if frame is not None:
                return frame
            found = self._scan(fh)
            moved = found == 0 and not self._last_still_there(fh)
            if moved or (found is None and changed):
                self._forget()  # rewritten in place: start over from the first frame
                if not self._learn(fh):
                    return None
                self._scan(fh)
            return self._last

    def _valid(self, frame: PffFrame | None) -> bool:
        return frame is not None and header_problem(frame.header, self.dp) is None

    def _learn(self, fh: BinaryIO) -> bool:
        """Learn this file's frame size from its first frame; False while that is not readable."""
        fh.seek(0)
        head = fh.read(MAX_HEADER_BYTES + 3 + self.dp.bytes_per_image)
        try:
            first = parse_frame(head, self.dp, file=str(self.path))
        except PffError:
            return False  # e.g. a half-rewritten snapshot: try again on the next call
        if first is None or not self._valid(first):
            return False
        self._first_offset = self._good_offset = first.offset
        self._good_index = 0
        self._frame_size = first.size
        return True

    def _by_size(self, fh: BinaryIO, size: int) -> PffFrame | None:
        """The frame at (n-1)·frame_size if it validates there, else None."""
        assert self._frame_size is not None
        fs = self._frame_size
        n = (size - self._first_offset) // fs
        if n <= 0:
            return None
        offset = self._first_offset + (n - 1) * fs
        fh.seek(offset)
        data = fh.read(size - offset)  # the last slot plus the partial tail: under two frames
        frame = _frame_at(data, self.dp, 0, str(self.path))
        if frame is None or frame.offset != 0 or frame.size != fs or not self._valid(frame):
            return None
        if self._valid(_frame_at(data, self.dp, fs, str(self.path))):
            return None  # later frames are narrower: the slot frame is not the last one
        frame = PffFrame(self.dp, frame.header, frame.header_json, frame.pixels, n - 1, offset)
        self._last = frame
        self._good_offset, self._good_index = frame.end, frame.index + 1
        return frame

    def _last_still_there(self, fh: BinaryIO) -> bool:
        """Whether the frame reported last is still at its offset (a same-size in-place rewrite
        with other header widths can leave nothing new at the last good offset)."""
        last = self._last
        if last is None:
            return True
        fh.seek(last.offset)
        return fh.read(last.size) == last.header_json + HEADER_END + last.pixels

    def _scan(self, fh: BinaryIO) -> int | None:
        """Read frames from the last good offset to the first incomplete one; returns how many,
        or None when the bytes at the last good offset are not a frame (the file changed)."""
        base = self._good_offset
        fh.seek(base)
        data = fh.read()
        pos = 0
        found = 0
        while True:
            try:
                frame = parse_frame(data, self.dp, offset=pos, file=str(self.path))
            except PffError:
                frame = None
                if pos == 0:
                    return None
            if frame is None or not self._valid(frame):
                if frame is not None and pos == 0:
                    return None
                break
            self._last = PffFrame(
                self.dp,
                frame.header,
                frame.header_json,
                frame.pixels,
                self._good_index,
                base + frame.offset,
            )
            self._good_offset = base + frame.end
            self._good_index += 1
            pos = frame.end
            found += 1
        return found


def _ph256_line(f: Mapping[str, Any]) -> str:
    return (
        f'{{ "quabo_num": {int(f["quabo_num"]):>1d}, "pkt_num": {int(f["pkt_num"]):>10d}, '
        f'"pkt_tai": {int(f["pkt_tai"]):>4d}, "pkt_nsec": {int(f["pkt_nsec"]):>9d}, '
        f'"tv_sec": {int(f["tv_sec"]):>10d}, "tv_usec": {int(f["tv_usec"]):>6d}}}'
    )


def _quabo_record(f: Mapping[str, Any]) -> str:
    return (
        f'{{ "pkt_num": {int(f["pkt_num"]):>10d}, "pkt_tai": {int(f["pkt_tai"]):>4d}, '
        f'"pkt_nsec": {int(f["pkt_nsec"]):>9d}, "tv_sec": {int(f["tv_sec"]):>10d}, '
        f'"tv_usec": {int(f["tv_usec"]):>6d}}}'
    )


def format_header(
    dp: DataProduct, fields: Mapping[str, Any], layout: HeaderLayout = "file"
) -> bytes:
    """The producer's fixed-width JSON header (docs/pff.md, "Fixed-width headers").

    For ph256, `fields` is flat (quabo_num, pkt_num, pkt_tai, pkt_nsec, tv_sec, tv_usec); for the
    4-quabo products it maps quabo_0..quabo_3 to dicts of the same fields (without quabo_num).
    `layout` picks the file writer's or the socket producer's spacing.
    """
    try:
        if dp.name == "ph256":
            return _ph256_line(fields).encode()
        records = [f'"{key}": {_quabo_record(fields[key])}' for key in QUABO_KEYS]
    except KeyError as exc:
        raise PffError(f"cannot format a {dp.name} header: missing field {exc}") from None
    if layout == "file":
        body = ", \n".join(f"   {r}" for r in records)
    else:
        body = ",\n".join(f" {r}" for r in records)
    return f"{{\n{body}\n}}".encode()


def _has_fixed_fields(dp: DataProduct, header: Mapping[str, Any]) -> bool:
    if dp.name == "ph256":
        return set(header) == {"quabo_num", *TIME_FIELDS}
    return set(header) == set(QUABO_KEYS) and all(
        isinstance(header[k], Mapping) and set(header[k]) == set(TIME_FIELDS) for k in QUABO_KEYS
    )


def encode_frame(
    header: Mapping[str, Any] | bytes,
    pixels: bytes | np.ndarray,
    dp: DataProduct,
    layout: HeaderLayout = "file",
) -> bytes:
    """One frame's bytes: header (dict formatted with format_header, or raw JSON bytes) + b"\\n\\n*" + pixels.

    An ndarray is converted to the product's little-endian raw dtype; its size must match the product.
    A dict with exactly the producer's fields is written in its fixed-width layout; any other dict
    is written as compact JSON.
    """
    if isinstance(header, (bytes, bytearray)):
        head = bytes(header)
        if not head.startswith(b"{") or b"\n\n" in head:
            raise PffError("raw header must start with '{' and contain no blank line")
    elif _has_fixed_fields(dp, header):
        head = format_header(dp, header, layout)
    else:
        head = json.dumps(dict(header), separators=(", ", ": ")).encode()
    if isinstance(pixels, np.ndarray):
        if pixels.size != dp.pixels:
            raise PffError(
                f"{dp.name} image needs {dp.pixels} pixels ({dp.rows}x{dp.cols}), got {pixels.size}"
            )
        raw = np.ascontiguousarray(pixels.reshape(-1).astype(dp.raw_dtype)).tobytes()
    else:
        raw = bytes(pixels)
    if len(raw) != dp.bytes_per_image:
        raise PffError(f"{dp.name} image needs {dp.bytes_per_image} pixel bytes, got {len(raw)}")
    return head + HEADER_END + raw


def header_time_fields(header: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The dict holding pkt_tai/pkt_nsec/tv_sec/tv_usec: top level (ph256) or quabo_0 (4-quabo)."""
    q0 = header.get("quabo_0")
    if isinstance(q0, Mapping) and "pkt_tai" in q0:
        return q0
    if "pkt_tai" in header or "tv_sec" in header:
        return header
    return None


def wr_to_unix(pkt_tai: int, pkt_nsec: int, tv_sec: int) -> WrTime:
    """White Rabbit to Unix time, exact to the nanosecond, with desync detection (docs/pff.md)."""
    tai = int(pkt_tai)
    nsec = int(pkt_nsec)
    host = int(tv_sec)
    d = (host - tai + TAI_UTC_OFFSET_S) % 1024
    if d == 0:
        sec = host
    elif d == 1:
        sec = host - 1
    elif d == 1023:
        sec = host + 1
    else:
        return WrTime(None, True)
    return WrTime(sec * _NS + nsec, False)


def header_wr_time(header: Mapping[str, Any]) -> WrTime:
    """wr_to_unix on a frame header's timing fields; desync when they are missing."""
    fields = header_time_fields(header)
    if fields is None:
        return WrTime(None, True)
    try:
        return wr_to_unix(fields["pkt_tai"], fields["pkt_nsec"], fields["tv_sec"])
    except (KeyError, TypeError, ValueError, OverflowError):
        # OverflowError: JSON allows 1e400, which parses to an infinite float.
        return WrTime(None, True)


def header_host_time_us(header: Mapping[str, Any]) -> int | None:
    """The DAQ host's receive time (`tv_sec`, `tv_usec`) as integer microseconds; None if absent.

    Integer so that callers keep every microsecond (a float near 1.7e9 s keeps only ~0.24 µs).
    """
    fields = header_time_fields(header)
    if fields is None:
        return None
    sec, usec = fields.get("tv_sec"), fields.get("tv_usec")
    if not isinstance(sec, int) or not isinstance(usec, int):
        return None
    return sec * 1_000_000 + usec


def _pieces(name: str) -> tuple[dict[str, str], set[str]]:
    pieces: dict[str, str] = {}
    words: set[str] = set()
    for piece in name.split("."):
        if not piece:
            continue
        key, sep, value = piece.partition("_")
        if sep:
            pieces.setdefault(key, value)
        else:
            words.add(piece)
    return pieces, words


def parse_data_file_name(name: str | os.PathLike[str]) -> DataFileName | None:
    """Parse a data file name (basename taken); None when it is not an image file (no dp piece)."""
    base = os.path.basename(os.fspath(name))
    # The start time may contain no dots, so splitting the whole name on "." is safe.
    pieces, words = _pieces(base)
    dp = pieces.get("dp")
    if not dp:
        return None
    try:
        module = int(pieces["module"]) if "module" in pieces else None
        seqno = int(pieces.get("seqno", "0"))
        bpp = int(pieces["bpp"]) if "bpp" in pieces else None
    except ValueError:
        return None
    return DataFileName(
        dp=dp,
        module=module,
        seqno=seqno,
        start=pieces.get("start"),
        bpp=bpp,
        sim="sim" in words,
        pieces=pieces,
    )


def parse_run_dir_name(name: str | os.PathLike[str]) -> dict[str, str] | None:
    """Pieces of `obs_<obs>.start_<t>.runtype_<type>.pffd` (or plain `obs_…`); None if not obs_*."""
    base = os.path.basename(os.fspath(name).rstrip("/"))
    if not base.startswith("obs_"):
        return None
    pieces, _ = _pieces(base)
    return pieces


def make_data_file_name(start: str, dp: DataProduct, module: int, seqno: int = 0) -> str:
    """`start_<t>.dp_<dp>.bpp_<n>.module_<id>.seqno_<n>.pff`, colons in `start` written as `_`."""
    return (
        f"start_{start.replace(':', '_')}.dp_{dp.name}.bpp_{dp.bytes_per_pixel}"
        f".module_{module}.seqno_{seqno}.pff"
    )


def make_sim_file_name(dp: DataProduct, module: int, seqno: int) -> str:
    """`sim.dp_<dp>.module_<id>.seqno_<n>.pff`."""
    return f"sim.dp_{dp.name}.module_{module}.seqno_{seqno}.pff"
