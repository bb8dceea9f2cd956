"""PFF data file and run directory names, which carry the metadata a PFF file itself lacks.

A PFF file has no file header, so its data product (hence its pixel count), module, sequence
number and start time are known only from its name (`DataFileName`), and a run's only from its
directory's name (`parse_run_dir_name`); the simulator names its files the same way.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass

from panoseti_appliance.products import DataProduct

_START_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})[:_-](\d{2})[:_-](\d{2})(?:\.\d+)?Z?$")


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


def parse_start_time(text: str) -> dt.datetime | None:
    """`2025-08-02T05:31:36Z`, `…T05_31_36Z` or `…T05-31-36Z` → UTC datetime; None if not a time."""
    m = _START_RE.match(text.strip())
    if not m:
        return None
    try:
        return dt.datetime.fromisoformat(f"{m[1]}T{m[2]}:{m[3]}:{m[4]}+00:00")
    except ValueError:
        return None


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
