"""The filesystem simulator: a module run directory that grows like Hashpipe's output.

Modes `filesystem_poll` and `filesystem_pipe` (docs/simulator.md). For each module it
creates `<sim_data_dir>/<sim_run_dir_template>` and the daq-active marker, appends frames to
`sim.dp_<dp>.module_<id>.seqno_<n>.pff` with a flush after each, rolls over every
`frames_per_pff` frames per data product and keeps only the newest two files per (module, dp) so
disk use stays bounded however long it runs. In pipe mode it also makes the FIFO and writes one
10-byte record per frame, dropping it when nobody reads (ENXIO) or the pipe is full (EAGAIN).
Everything it created is removed on close. File I/O runs in one worker thread, never on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from panoseti_appliance import pff
from panoseti_appliance.config.models import SimulatorConfig
from panoseti_appliance.daqdata.sim.base import SENT, SimStats, SimulatorError
from panoseti_appliance.products import DataProduct

log = logging.getLogger(__name__)

#: Files kept per (module, dp): the one being written and the one before it.
KEEP_FILES = 2
#: Width of one FIFO record (docs/ingestion.md, "Named-pipe signals").
PIPE_RECORD_BYTES = 10


def pipe_record(dp: DataProduct) -> bytes:
    """The 10-byte FIFO record announcing a frame of `dp`: its name, space-padded."""
    return dp.name.encode("ascii").ljust(PIPE_RECORD_BYTES, b" ")


@dataclass
class _DataFile:
    """The file of one (module, dp) being appended to, and the older ones still on disk."""

    seqno: int = -1
    frames: int = 0
    handle: BinaryIO | None = None
    on_disk: deque[Path] = field(default_factory=deque)


@dataclass
class _Module:
    """One simulated module's run directory, marker and FIFO."""

    run_dir: Path
    marker: Path
    fifo: Path | None
    fifo_fd: int | None = None
    files: dict[str, _DataFile] = field(default_factory=dict)


class FilesystemEmitter:
    """Writes simulated frames as data files (and FIFO records with `pipe_name`)."""

    def __init__(self, cfg: SimulatorConfig, *, pipe_name: str | None) -> None:
        self.cfg = cfg
        self.data_dir = Path(cfg.sim_data_dir)
        self.pipe_name = pipe_name
        self.stats = SimStats()
        self._modules: dict[int, _Module] = {}
        # Directories this emitter made, deepest last; removed (deepest first) on close.
        self._made_dirs: list[Path] = []
        self._executor: ThreadPoolExecutor | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim-files")
        try:
            await self._run(self._open_blocking)
        except OSError as exc:
            await self.close()
            raise SimulatorError(
                f"{self.cfg.mode} simulator: cannot prepare {exc.filename or self.data_dir}: "
                f"{exc.strerror or exc} (check sim_data_dir)"
            ) from exc

    async def emit(
        self, module_id: int, dp: DataProduct, header: dict[str, Any], pixels: bytes, step: int
    ) -> None:
        data = pff.encode_frame(header, pixels, dp, layout="file")
        await self._run(self._append_blocking, module_id, dp, data)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._remove_blocking)
        finally:
            executor.shutdown(wait=False)

    # ---- worker-thread side ----------------------------------------------------------------

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._executor is None:
            raise SimulatorError(f"{self.cfg.mode} simulator is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _mkdirs(self, path: Path) -> None:
        missing = []
        for parent in (path, *path.parents):
            if parent.exists():
                break
            missing.append(parent)
        for directory in reversed(missing):
            directory.mkdir()
            self._made_dirs.append(directory)

    def _open_blocking(self) -> None:
        for module_id in self.cfg.module_ids:
            run_dir = self.data_dir / self.cfg.sim_run_dir_template.format(module_id=module_id)
            self._mkdirs(run_dir)
            marker = run_dir / self.cfg.daq_active_file.format(module_id=module_id)
            marker.touch()
            fifo = None
            if self.pipe_name is not None:
                fifo = run_dir / self.pipe_name
                if fifo.exists() or fifo.is_symlink():
                    fifo.unlink()
                os.mkfifo(fifo, 0o660)
            self._modules[module_id] = _Module(run_dir, marker, fifo)

    def _append_blocking(self, module_id: int, dp: DataProduct, data: bytes) -> None:
        module = self._modules[module_id]
        state = module.files.setdefault(dp.name, _DataFile())
        if state.handle is None or state.frames >= self.cfg.frames_per_pff:
            self._roll_over(module, module_id, dp, state)
        assert state.handle is not None
        state.handle.write(data)
        state.handle.flush()
        state.frames += 1
        self.stats.add(dp.name, SENT)
        if module.fifo is not None:
            self._signal(module, dp)

    def _roll_over(self, module: _Module, module_id: int, dp: DataProduct, st: _DataFile) -> None:
        if st.handle is not None:
            st.handle.close()
        st.seqno += 1
        st.frames = 0
        path = module.run_dir / pff.make_sim_file_name(dp, module_id, st.seqno)
        st.handle = path.open("wb")
        st.on_disk.append(path)
        while len(st.on_disk) > KEEP_FILES:
            with contextlib.suppress(FileNotFoundError):
                st.on_disk.popleft().unlink()
        if st.seqno:
            self.stats.add(dp.name, "rollovers")

    def _signal(self, module: _Module, dp: DataProduct) -> None:
        """Write one FIFO record the way Hashpipe does: never block, drop when unread or full."""
        assert module.fifo is not None
        if module.fifo_fd is None:
            try:
                module.fifo_fd = os.open(module.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                self.stats.add(dp.name, "pipe_no_reader")
                return
        try:
            os.write(module.fifo_fd, pipe_record(dp))
            self.stats.add(dp.name, "pipe_records")
        except BlockingIOError:
            self.stats.add(dp.name, "pipe_full")
        except BrokenPipeError:
            # The reader went away; reopen (and find out whether a new one is there) next time.
            os.close(module.fifo_fd)
            module.fifo_fd = None
            self.stats.add(dp.name, "pipe_no_reader")

    def _remove_blocking(self) -> None:
        for module in self._modules.values():
            if module.fifo_fd is not None:
                os.close(module.fifo_fd)
                module.fifo_fd = None
            for state in module.files.values():
                if state.handle is not None:
                    state.handle.close()
                for path in state.on_disk:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
            for extra in (module.marker, module.fifo):
                if extra is not None:
                    with contextlib.suppress(FileNotFoundError):
                        extra.unlink()
        self._modules.clear()
        for directory in reversed(self._made_dirs):
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass  # someone else removed it already
            except OSError as exc:
                # Not empty: someone else put files there; leave them and say so.
                log.warning("simulator left %s in place: %s", directory, exc.strerror)
        self._made_dirs.clear()
