"""Where the DAQ writes, and reading its newest frames: shared by the poll and pipe sources.

Layout (docs/ingestion.md, "File polling"):
`data_dir/module_<digits>/<active obs_* run>/<data files>`. The module id comes from the
`module_<digits>` directory name only; the active run is the `obs_*` directory with the newest
mtime, re-evaluated on every scan so a new run is followed; per data product the newest file is
the one with the highest seqno (tie: newest mtime). Everything here blocks on the filesystem, so
callers run it in a worker thread.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from panoseti_appliance import pff
from panoseti_appliance.daqdata.server.frame import Frame
from panoseti_appliance.daqdata.server.sources.base import SourceError, SourceStats
from panoseti_appliance.products import BY_NAME, DataProduct

log = logging.getLogger(__name__)

MODULE_DIR = re.compile(r"module_(\d+)")
#: Shortest period of the safety-net full re-scan.
MIN_RESCAN_S = 1.0
T = TypeVar("T")


def module_dirs(data_dir: Path, module_ids: frozenset[int] | None) -> dict[int, Path]:
    """`module_<digits>` directories under data_dir, by id (filtered by module_ids if given)."""
    found: dict[int, Path] = {}
    try:
        entries = list(os.scandir(data_dir))
    except OSError:
        return found
    for entry in entries:
        m = MODULE_DIR.fullmatch(entry.name)
        if m is None or not entry.is_dir():
            continue
        module = int(m.group(1))
        if module_ids is None or module in module_ids:
            found[module] = Path(entry.path)
    return found


def module_of(data_dir: Path, path: Path) -> int | None:
    """The module id of a path inside data_dir (its first component's digits), or None."""
    try:
        first = path.relative_to(data_dir).parts[0]
    except (ValueError, IndexError):
        return None
    m = MODULE_DIR.fullmatch(first)
    return int(m.group(1)) if m else None


def _entries(
    directory: Path, parse: Callable[[str], T | None], *, dirs: bool
) -> Iterator[tuple[T, Path, int]]:
    """(what `parse` made of the name, path, mtime in ns) for each directory (or regular file)
    in `directory` whose name parses; entries that vanish or cannot be stat'ed meanwhile are
    skipped (the DAQ is writing)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        parsed = parse(entry.name)
        if parsed is None:
            continue
        try:
            if not (entry.is_dir() if dirs else entry.is_file()):
                continue
            mtime = entry.stat().st_mtime_ns
        except OSError:
            continue
        yield parsed, Path(entry.path), mtime


def active_run(module_dir: Path) -> Path | None:
    """The module's `obs_*` run directory with the newest mtime, or None."""
    best: tuple[int, str, Path] | None = None
    for _, path, mtime in _entries(module_dir, pff.parse_run_dir_name, dirs=True):
        key = (mtime, path.name, path)
        if best is None or key[:2] > best[:2]:
            best = key
    return None if best is None else best[2]


def newest_files(run_dir: Path, module: int) -> dict[DataProduct, Path]:
    """Per data product, the run's newest data file: highest seqno, then newest mtime.

    Files whose name lacks a known dp, or names another module, are ignored.
    """

    def data_file(name: str) -> pff.DataFileName | None:
        parsed = pff.parse_data_file_name(name) if name.endswith(".pff") else None
        if parsed is None or parsed.dp not in BY_NAME:
            return None
        return parsed if parsed.module in (None, module) else None

    best: dict[DataProduct, tuple[int, int, Path]] = {}
    for parsed, path, mtime in _entries(run_dir, data_file, dirs=False):
        dp = BY_NAME[parsed.dp]
        key = (parsed.seqno, mtime, path)
        if dp not in best or key[:2] > best[dp][:2]:
            best[dp] = key
    return {dp: v[2] for dp, v in best.items()}


@dataclass
class _Slot:
    """What was last read and submitted for one (module, dp)."""

    tail: pff.FileTail | None = None
    last: tuple[str, int] | None = None
    failures: int = 0


@dataclass
class NewestFrameReader:
    """Reads the newest frame of (module, dp) and returns it only if not submitted before.

    Keeps one FileTail per (module, dp) for the current newest file, so each read touches only
    the last frame; skips a frame that is the same (file, index) as the last one returned.
    Blocking: call from a worker thread.
    """

    stats: SourceStats
    _slots: dict[tuple[int, str], _Slot] = field(default_factory=dict)

    def read(self, module: int, dp: DataProduct, path: Path) -> Frame | None:
        slot = self._slots.setdefault((module, dp.name), _Slot())
        if slot.tail is None or slot.tail.path != path:
            slot.tail = pff.FileTail(path, dp)
        try:
            frame = slot.tail.last_frame()
        except (OSError, ValueError) as exc:
            # A file can vanish (rotation) or be caught mid-rewrite (PffError and JSON errors
            # are ValueErrors): count it and try again next time.
            self.stats.add("read_errors")
            if slot.failures == 0:
                log.warning("cannot read the last frame of %s: %s", path, exc)
            slot.failures += 1
            return None
        slot.failures = 0
        if frame is None:
            return None
        key = (str(path), frame.index)
        if key == slot.last:
            self.stats.add("unchanged")
            return None
        slot.last = key
        self.stats.add("frames_in")
        return Frame(module, dp, frame.header, frame.pixels, path.name, frame.index, time.time_ns())

    def read_modules(
        self,
        data_dir: Path,
        module_ids: frozenset[int] | None,
        only: Iterable[int] | None = None,
        dps: Iterable[tuple[int, DataProduct]] | None = None,
    ) -> list[Frame]:
        """New frames of the active runs: every module (or `only` those), every dp (or `dps`).

        The module directories, their active runs and newest files are looked up afresh, so new
        modules, new runs and seqno roll-overs are followed.
        """
        wanted = None if dps is None else {(m, dp.name) for m, dp in dps}
        modules = module_dirs(data_dir, module_ids)
        if only is not None:
            keep = set(only)
            modules = {m: p for m, p in modules.items() if m in keep}
        if wanted is not None:
            modules = {m: p for m, p in modules.items() if any(w[0] == m for w in wanted)}
        frames: list[Frame] = []
        for module, mdir in sorted(modules.items()):
            run = active_run(mdir)
            if run is None:
                continue
            for dp, path in newest_files(run, module).items():
                if wanted is not None and (module, dp.name) not in wanted:
                    continue
                frame = self.read(module, dp, path)
                if frame is not None:
                    frames.append(frame)
        return frames


class RunDirSource:
    """What the poll and pipe sources share: the directory the DAQ writes to, the modules to
    follow, how often to re-scan, and the reader that submits each newest frame once."""

    name = "run_dir"

    def __init__(
        self, data_dir: Path, interval_s: float, module_ids: frozenset[int] | None
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.interval_s = interval_s
        self.module_ids = module_ids
        self.rescan_s = max(MIN_RESCAN_S, interval_s)
        self.stats = SourceStats()
        self._reader = NewestFrameReader(self.stats)

    def require_data_dir(self) -> None:
        """SourceError unless data_dir is an existing directory (the reason InitHpIo reports)."""
        if not self.data_dir.is_dir():
            raise SourceError(
                f"{self.name} source: data_dir '{self.data_dir}' does not exist or is not a"
                " directory"
            )
