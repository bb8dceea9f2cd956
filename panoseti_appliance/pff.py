"""PFF frames: read, write, find the last complete frame, names, White Rabbit time (spec pff.md).

INTERFACE SKELETON: the signatures and docstrings below are the contract other modules are built
against; the foundation issue fills in the bodies and the tests.
"""

from __future__ import annotations

import decimal
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from panoseti_appliance.products import DataProduct

#: Bytes between the JSON header and the pixels.
HEADER_END = b"\n\n*"
#: TAI - UTC, fixed (pff.md §4).
TAI_UTC_OFFSET_S = 37
#: Longest JSON header we accept while looking for HEADER_END (pff.md §6 reads 4 KiB).
MAX_HEADER_BYTES = 4096

HeaderLayout = Literal["file", "socket"]


class PffError(ValueError):
    """A malformed PFF input; the message names file, offset and reason."""

    def __init__(
        self, reason: str, *, file: str | os.PathLike[str] | None = None, offset: int | None = None
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

    def image(self) -> np.ndarray:
        """Pixels as a (rows, cols) array in the product's user dtype (int16 for pulse height)."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class WrTime:
    """White Rabbit time of a frame: exact integer ns, or desync (no WR time)."""

    unix_ns: int | None
    desync: bool

    @property
    def decimal(self) -> decimal.Decimal:
        """Seconds as an exact Decimal; Decimal(0) on desync (client compatibility)."""
        raise NotImplementedError


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


def parse_frame(
    buf: bytes | memoryview,
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
    raise NotImplementedError


def iter_frames(
    source: str | os.PathLike[str] | BinaryIO | bytes,
    dp: DataProduct | None = None,
    *,
    strict: bool = True,
) -> Iterator[PffFrame]:
    """Yield every complete frame; dp defaults to the one in the file name.

    A trailing partial frame raises PffError("truncated …") with strict, else ends the iteration.
    """
    raise NotImplementedError


def count_frames(path: str | os.PathLike[str], dp: DataProduct | None = None) -> int:
    """Number of complete frames, using the frame size learned from the first frame and verified."""
    raise NotImplementedError


def learn_frame_size(head: bytes, dp: DataProduct, *, file: str | None = None) -> int | None:
    """Frame size from the first frame's header length; None while the first header is incomplete."""
    raise NotImplementedError


class FileTail:
    """Follow one growing file and return its last complete frame (pff.md §6).

    Keeps (inode, frame_size, last good offset, index) between calls so each call reads only the
    last frame (plus the first 4 KiB once per file); a changed inode or a shrunken file resets it.
    Blocking: call it from a worker thread.
    """

    def __init__(self, path: str | os.PathLike[str], dp: DataProduct) -> None:
        self.path = Path(path)
        self.dp = dp

    def last_frame(self) -> PffFrame | None:
        """The newest complete, valid frame, or None when there is none yet."""
        raise NotImplementedError


def format_header(
    dp: DataProduct, fields: Mapping[str, Any], layout: HeaderLayout = "file"
) -> bytes:
    """The producer's fixed-width JSON header (pff.md §3).

    For ph256, `fields` is flat (quabo_num, pkt_num, pkt_tai, pkt_nsec, tv_sec, tv_usec); for the
    4-quabo products it maps quabo_0..quabo_3 to dicts of the same fields (without quabo_num).
    `layout` picks the file writer's or the socket producer's spacing.
    """
    raise NotImplementedError


def encode_frame(
    header: Mapping[str, Any] | bytes,
    pixels: bytes | np.ndarray,
    dp: DataProduct,
    layout: HeaderLayout = "file",
) -> bytes:
    """One frame's bytes: header (dict formatted with format_header, or raw JSON bytes) + b"\\n\\n*" + pixels.

    An ndarray is converted to the product's little-endian raw dtype; its size must match the product.
    """
    raise NotImplementedError


def header_time_fields(header: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The dict holding pkt_tai/pkt_nsec/tv_sec/tv_usec: top level (ph256) or quabo_0 (4-quabo)."""
    raise NotImplementedError


def wr_to_unix(pkt_tai: int, pkt_nsec: int, tv_sec: int) -> WrTime:
    """White Rabbit to Unix time, exact to the nanosecond, with desync detection (pff.md §4)."""
    raise NotImplementedError


def header_wr_time(header: Mapping[str, Any]) -> WrTime:
    """wr_to_unix on a frame header's timing fields; desync when they are missing."""
    raise NotImplementedError


def parse_data_file_name(name: str | os.PathLike[str]) -> DataFileName | None:
    """Parse a data file name (basename taken); None when it is not an image file (no dp piece)."""
    raise NotImplementedError


def parse_run_dir_name(name: str | os.PathLike[str]) -> dict[str, str] | None:
    """Pieces of `obs_<obs>.start_<t>.runtype_<type>.pffd` (or plain `obs_…`); None if not obs_*."""
    raise NotImplementedError


def make_data_file_name(start: str, dp: DataProduct, module: int, seqno: int = 0) -> str:
    """`start_<t>.dp_<dp>.bpp_<n>.module_<id>.seqno_<n>.pff`, colons in `start` written as `_`."""
    raise NotImplementedError


def make_sim_file_name(dp: DataProduct, module: int, seqno: int) -> str:
    """`sim.dp_<dp>.module_<id>.seqno_<n>.pff`."""
    raise NotImplementedError
