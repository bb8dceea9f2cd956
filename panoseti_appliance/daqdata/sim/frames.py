"""Source frames of the simulator: load and validate a PFF file, restamp headers to "now".

The simulator replays recorded frames. Loading reads every frame into memory once, so a bad
file fails InitHpIo at start with the file and the reason instead of part-way through a run.
White Rabbit desync is a property of real data (the bundled ph256 file is desynchronised in every
frame), never a load error. Restamping gives each emitted frame the host time of its emission and
a White Rabbit time consistent with it, so clients see a valid, current WR time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panoseti_appliance import pff
from panoseti_appliance.pff import QUABO_KEYS, header_problem
from panoseti_appliance.products import DataProduct


class FrameLoadError(Exception):
    """A source file cannot be replayed; str() names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class SourceFrame:
    """One recorded frame ready to replay: its product, exact header and raw pixel bytes."""

    dp: DataProduct
    header: dict[str, Any]
    pixels: bytes


def load_frames(path: Path, dp: DataProduct, role: str) -> list[SourceFrame]:
    """Every frame of `path` read as `dp` and validated; `role` ("movie", "ph") names it in errors.

    A file whose name says another data product is refused: its frame size would be wrong and
    every frame would be garbage.
    """
    label = f"{role} source {path}"
    if not path.is_file():
        raise FrameLoadError(f"{label}: no such file (set the {role}_pff_path option)")
    named = pff.parse_data_file_name(path.name)
    if named is not None and named.dp != dp.name:
        raise FrameLoadError(
            f"{label}: the file name says dp_{named.dp} but {role}_type is {dp.name}"
        )
    frames: list[SourceFrame] = []
    try:
        for frame in pff.iter_frames(path, dp, strict=True):
            problem = header_problem(frame.header, dp)
            if problem is not None:
                raise FrameLoadError(f"{label} frame {frame.index}: {problem}")
            frames.append(SourceFrame(dp, frame.header, frame.pixels))
    except pff.PffError as exc:
        raise FrameLoadError(f"{label}: {exc.reason}") from exc
    except OSError as exc:
        raise FrameLoadError(f"{label}: {exc.strerror or exc}") from exc
    if not frames:
        raise FrameLoadError(f"{label}: the file holds no complete {dp.name} frame")
    return frames


def emission_time_fields(now_ns: int) -> dict[str, int]:
    """Host and White Rabbit time fields for a frame emitted at `now_ns` (Unix ns).

    pkt_tai is the low 10 bits of TAI seconds and pkt_nsec the nanoseconds, so
    pff.wr_to_unix(pkt_tai, pkt_nsec, tv_sec) gives back tv_sec + tv_usec/1e6 with no desync.
    """
    tv_sec, ns = divmod(now_ns, 1_000_000_000)
    tv_usec = ns // 1000
    return {
        "pkt_tai": (tv_sec + pff.TAI_UTC_OFFSET_S) % 1024,
        "pkt_nsec": tv_usec * 1000,
        "tv_sec": tv_sec,
        "tv_usec": tv_usec,
    }


def restamp(header: Mapping[str, Any], now_ns: int | None = None) -> dict[str, Any]:
    """A copy of `header` whose time fields say it was produced at `now_ns` (default: now).

    Flat ph256 headers get new top-level fields; 4-quabo headers get them in every quabo_i.
    pkt_num and quabo_num keep their recorded values.
    """
    stamp = emission_time_fields(time.time_ns() if now_ns is None else now_ns)
    out = dict(header)
    quabos = [key for key in QUABO_KEYS if isinstance(out.get(key), Mapping)]
    if not quabos:
        out.update(stamp)
        return out
    for key in quabos:
        record = dict(out[key])
        record.update(stamp)
        out[key] = record
    return out
