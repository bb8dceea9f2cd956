"""Named-pipe signal source (docs/ingestion.md): read a frame when the writer says one is new.

In each module's active run dir the writer (Hashpipe or the simulator) has a FIFO and writes one
10-byte record per frame appended: the dp name, space-padded. This source keeps each FIFO open
read-only *and* write-only: with no writer left, a FIFO would otherwise read as EOF forever and
the event loop would spin. Records are coalesced per batch: each (module, dp) signalled is read
once, at most once per interval. New FIFOs (new modules, new runs) are picked up by a re-scan
every max(1 s, interval); a quiet pipe is normal and never ends the source.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from panoseti_appliance.daqdata.server.frame import FrameSink
from panoseti_appliance.daqdata.server.sources.base import deliver, format_counts
from panoseti_appliance.daqdata.server.sources.rundir import RunDirSource, active_run, module_dirs
from panoseti_appliance.products import BY_NAME, DataProduct

log = logging.getLogger(__name__)

#: One signal: the dp name in ASCII, left-aligned, padded with spaces.
RECORD_BYTES = 10
#: Bytes read per os.read, and reads per wake-up (so a busy writer cannot hog the loop).
READ_BYTES = 1 << 16
MAX_READS_PER_WAKEUP = 16


def parse_records(data: bytes) -> tuple[list[str], bytes]:
    """Split into 10-byte records (names without padding) and the incomplete remainder."""
    n = len(data) - len(data) % RECORD_BYTES
    names = [
        data[i : i + RECORD_BYTES].strip(b" \0").decode("ascii", errors="replace")
        for i in range(0, n, RECORD_BYTES)
    ]
    return names, data[n:]


@dataclass
class _Fifo:
    """One open FIFO: our reader fd, the writer fd that prevents EOF, and the partial record."""

    module: int
    path: Path
    rfd: int
    wfd: int
    rest: bytes = b""


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd`: a FIFO unlinked and made again at the
    same path is a new one, which the DAQ writes to while the old one hears nothing."""
    try:
        now = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


class FilesystemPipeSource(RunDirSource):
    """Signals from `data_dir/module_<id>/<newest obs_*>/<pipe_name>` FIFOs trigger frame reads."""

    name = "filesystem_pipe"

    def __init__(
        self,
        data_dir: Path,
        interval_s: float,
        pipe_name: str,
        module_ids: frozenset[int] | None,
    ) -> None:
        super().__init__(data_dir, interval_s, module_ids)
        self.pipe_name = pipe_name
        self._fifos: dict[int, _Fifo] = {}
        self._pending: set[tuple[int, DataProduct]] = set()
        self._wake = asyncio.Event()

    def fifo_paths(self) -> dict[int, Path]:
        """The FIFO currently followed per module."""
        return {m: f.path for m, f in self._fifos.items()}

    async def run(self, sink: FrameSink, ready: asyncio.Event) -> None:
        await asyncio.to_thread(self.require_data_dir)
        loop = asyncio.get_running_loop()
        try:
            self._sync(loop, await asyncio.to_thread(self._find_fifos))
            for frame in await asyncio.to_thread(
                self._reader.read_modules, self.data_dir, self.module_ids
            ):
                deliver(sink, frame, self.stats, log)
            log.info(
                "%s source: following %s in %s (%d FIFO(s))",
                self.name,
                self.pipe_name,
                self.data_dir,
                len(self._fifos),
            )
            ready.set()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._rescan_loop(loop))
                tg.create_task(self._read_loop(loop, sink))
        finally:
            for module in list(self._fifos):
                self._close(loop, module)
            log.info("%s source: stopped; %s", self.name, format_counts(self.stats.snapshot()))

    def _find_fifos(self) -> dict[int, Path]:
        """The FIFO of each module's active run, where one exists (blocking)."""
        found: dict[int, Path] = {}
        for module, mdir in module_dirs(self.data_dir, self.module_ids).items():
            run = active_run(mdir)
            if run is None:
                continue
            path = run / self.pipe_name
            with contextlib.suppress(OSError):
                if stat.S_ISFIFO(os.stat(path).st_mode):
                    found[module] = path
        return found

    def _sync(self, loop: asyncio.AbstractEventLoop, wanted: dict[int, Path]) -> None:
        """Close FIFOs that are no longer active, open the new ones."""
        for module, fifo in list(self._fifos.items()):
            if wanted.get(module) != fifo.path or not _same_file(fifo.rfd, fifo.path):
                self._close(loop, module)
        for module, path in wanted.items():
            if module not in self._fifos:
                self._open(loop, module, path)

    def _open(self, loop: asyncio.AbstractEventLoop, module: int, path: Path) -> None:
        flags = os.O_NONBLOCK | os.O_CLOEXEC
        try:
            rfd = os.open(path, os.O_RDONLY | flags)
        except OSError as exc:
            self.stats.add("open_errors")
            log.warning("%s source: cannot open %s: %s", self.name, path, exc.strerror)
            return
        if not stat.S_ISFIFO(os.fstat(rfd).st_mode):
            # Replaced since the scan; epoll would refuse a regular file.
            os.close(rfd)
            self.stats.add("open_errors")
            log.warning("%s source: %s is no longer a FIFO", self.name, path)
            return
        try:
            wfd = os.open(path, os.O_WRONLY | flags)
        except OSError as exc:
            os.close(rfd)
            self.stats.add("open_errors")
            log.warning("%s source: cannot open %s for writing: %s", self.name, path, exc.strerror)
            return
        fifo = _Fifo(module, path, rfd, wfd)
        self._fifos[module] = fifo
        loop.add_reader(rfd, self._on_readable, fifo)
        self.stats.add("fifos_opened")
        log.info("%s source: module %d: following %s", self.name, module, path)

    def _close(self, loop: asyncio.AbstractEventLoop, module: int) -> None:
        fifo = self._fifos.pop(module)
        loop.remove_reader(fifo.rfd)
        os.close(fifo.rfd)
        os.close(fifo.wfd)
        log.info("%s source: module %d: stopped following %s", self.name, module, fifo.path)

    def _on_readable(self, fifo: _Fifo) -> None:
        """Drain the FIFO, turn complete records into pending (module, dp) reads."""
        self.stats.add("wakeups")
        data = fifo.rest
        for _ in range(MAX_READS_PER_WAKEUP):
            try:
                chunk = os.read(fifo.rfd, READ_BYTES)
            except BlockingIOError:
                break
            except OSError as exc:
                self.stats.add("read_errors")
                log.warning("%s source: reading %s: %s", self.name, fifo.path, exc.strerror)
                break
            if not chunk:
                break
            data += chunk
        names, fifo.rest = parse_records(data)
        for name in names:
            dp = BY_NAME.get(name)
            if dp is None:
                self.stats.add("unknown_records")
                continue
            self.stats.add("signals")
            self._pending.add((fifo.module, dp))
        if self._pending:
            self._wake.set()

    async def _read_loop(self, loop: asyncio.AbstractEventLoop, sink: FrameSink) -> None:
        """Read each signalled (module, dp) once per batch, at most once per interval."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, set()
            started = loop.time()
            self.stats.add("batches")
            frames = await asyncio.to_thread(
                self._reader.read_modules, self.data_dir, self.module_ids, None, batch
            )
            for frame in frames:
                deliver(sink, frame, self.stats, log)
            await asyncio.sleep(max(0.0, self.interval_s - (loop.time() - started)))

    async def _rescan_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            await asyncio.sleep(self.rescan_s)
            self.stats.add("rescans")
            self._sync(loop, await asyncio.to_thread(self._find_fifos))
