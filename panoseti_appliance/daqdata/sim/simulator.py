"""The DAQ simulator: replay recorded frames into the DaqData daemon (docs/simulator.md).

The daemon runs it when InitHpIo has simulate_daq=true, and `panoseti sim` runs it standalone
against a running daemon. It loads every frame of a movie and a pulse-height file (by default
the sample run bundled in the package), then steps n = 0, 1, 2, …: for each simulated module it
emits movie[n % N_movie] then ph[n % N_ph], and sleeps `update_interval_seconds`. Headers are
restamped to the moment of emission unless `replay_original_timestamps` is set. Modes:
- `filesystem_poll`, `filesystem_pipe`: a growing run directory (`sim/files.py`);
- `uds`: Hashpipe's snapshot producer on the daemon's sockets (`sim/hashpipe.py`);
- `rpc`: one UploadImages stream (`sim/upload.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from panoseti_appliance.config.models import SimulatorConfig
from panoseti_appliance.daqdata.sim.base import Emitter, SimStats, SimulatorError
from panoseti_appliance.daqdata.sim.files import FilesystemEmitter
from panoseti_appliance.daqdata.sim.frames import FrameLoadError, SourceFrame, load_frames, restamp
from panoseti_appliance.daqdata.sim.hashpipe import HashpipeEmitter, HashpipeFaults
from panoseti_appliance.daqdata.sim.upload import UPLOAD_BATCH, UploadEmitter
from panoseti_appliance.products import by_name

__all__ = ["HashpipeFaults", "Simulator", "SimulatorError"]

log = logging.getLogger(__name__)

#: Modes whose files must exist before the daemon's filesystem sources scan.
FILESYSTEM_MODES = frozenset({"filesystem_poll", "filesystem_pipe"})


def default_source_path(dp_name: str) -> Path:
    """The bundled sample file of `dp_name`; SimulatorError when the package has none."""
    from panoseti_appliance.sample_data import sample_files

    files = sample_files()
    if dp_name not in files:
        have = ", ".join(sorted(files)) or "none"
        raise SimulatorError(
            f"no bundled sample for {dp_name} (bundled: {have}); set movie_pff_path/ph_pff_path"
        )
    return files[dp_name]


class Simulator:
    """Load source frames and emit them in a background task, in one of the four modes."""

    def __init__(
        self,
        cfg: SimulatorConfig,
        *,
        socket_template: str,
        pipe_name: str,
        rpc_target: str | None,
        faults: HashpipeFaults | None = None,
        upload_batch: int = UPLOAD_BATCH,
    ) -> None:
        self.cfg = cfg
        self.mode: str = cfg.mode
        self.data_dir: Path = Path(cfg.sim_data_dir)
        self.starts_before_sources: bool = cfg.mode in FILESYSTEM_MODES
        self.socket_template = socket_template
        self.pipe_name = pipe_name
        self.rpc_target = rpc_target
        self.faults = faults
        #: rpc mode: most images per UploadImages request.
        self.upload_batch = upload_batch
        #: Steps completed (each step emits one movie and one PH frame per module).
        self.steps = 0
        self._emitter: Emitter | None = None
        self._stats = SimStats()
        self._task: asyncio.Task[None] | None = None
        #: Why the step loop ended early (a write failed, ...), or None.
        self.failure: str | None = None

    @property
    def stats(self) -> SimStats:
        """Frames sent and dropped per data product (kept after stop; empty before start)."""
        return self._stats

    @property
    def finished(self) -> bool:
        """True once the step loop has ended (frame_limit reached) or failed."""
        return self._task is not None and self._task.done()

    async def wait(self) -> None:
        """Wait until the step loop ends (frame_limit reached); SimulatorError if it failed."""
        if self._task is not None:
            await asyncio.shield(self._task)
        if self.failure is not None:
            raise SimulatorError(self.failure)

    async def start(self) -> None:
        """Load the sources, prepare the mode's output and start emitting.

        For the filesystem modes the first step is written before returning, so the daemon's
        sources find files on their first scan. Raises SimulatorError with the reason.
        """
        if self._emitter is not None:
            raise SimulatorError("simulator already started")
        # Reading the files is blocking I/O: keep it off the daemon's event loop.
        movie, ph = await asyncio.to_thread(self._load)
        emitter = self._make_emitter()
        await emitter.open()
        self._emitter = emitter
        self._stats = emitter.stats
        try:
            if self.starts_before_sources and self.cfg.frame_limit != 0:
                await self._step(emitter, movie, ph, 0)
                self.steps = 1
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._loop(emitter, movie, ph), name="simulator")
        log.info(
            "simulator %s started: modules %s, %d %s + %d %s frames, interval %ss",
            self.mode,
            self.cfg.module_ids,
            len(movie),
            self.cfg.movie_type,
            len(ph),
            self.cfg.ph_type,
            self.cfg.update_interval_seconds,
        )

    async def stop(self) -> None:
        """Stop emitting and delete every file, FIFO and marker the simulator created."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        emitter, self._emitter = self._emitter, None
        if emitter is not None:
            await emitter.close()
            log.info(
                "simulator %s stopped after %d steps: %s",
                self.mode,
                self.steps,
                emitter.stats.status_line(),
            )

    # ---- internals ---------------------------------------------------------------------------

    def _load(self) -> tuple[list[SourceFrame], list[SourceFrame]]:
        if not self.cfg.module_ids:
            raise SimulatorError("simulator module_ids is empty: list at least one module id")
        loaded = []
        for role, type_name, path in (
            ("movie", self.cfg.movie_type, self.cfg.movie_pff_path),
            ("ph", self.cfg.ph_type, self.cfg.ph_pff_path),
        ):
            source = Path(path) if path is not None else default_source_path(type_name)
            try:
                loaded.append(load_frames(source, by_name(type_name), role))
            except FrameLoadError as exc:
                raise SimulatorError(str(exc)) from exc
        return loaded[0], loaded[1]

    def _make_emitter(self) -> Emitter:
        if self.mode in FILESYSTEM_MODES:
            pipe = self.pipe_name if self.mode == "filesystem_pipe" else None
            return FilesystemEmitter(self.cfg, pipe_name=pipe)
        if self.mode == "uds":
            return HashpipeEmitter(
                list(self.cfg.uds_data_products), self.socket_template, self.faults
            )
        if self.mode == "rpc":
            if not self.rpc_target:
                raise SimulatorError(
                    "rpc simulator has no target: set daqdata.simulator.rpc_target or a "
                    "unix:// address in daqdata.listen"
                )
            return UploadEmitter(self.rpc_target, self.upload_batch)
        raise SimulatorError(f"unknown simulator mode {self.mode!r}")

    async def _step(
        self, emitter: Emitter, movie: list[SourceFrame], ph: list[SourceFrame], n: int
    ) -> None:
        replay = self.cfg.replay_original_timestamps
        for module_id in self.cfg.module_ids:
            for frames in (movie, ph):
                frame = frames[n % len(frames)]
                header = frame.header if replay else restamp(frame.header)
                await emitter.emit(module_id, frame.dp, header, frame.pixels, n)

    async def _loop(
        self, emitter: Emitter, movie: list[SourceFrame], ph: list[SourceFrame]
    ) -> None:
        try:
            await self._run_steps(emitter, movie, ph)
        except (OSError, SimulatorError) as exc:
            # An output went away: the run ends, and the status says why.
            self.failure = f"{self.mode} simulator stopped at step {self.steps}: {exc}"
            log.error("%s", self.failure)
        except Exception as exc:
            # A bug: nobody else awaits this task, so it ends the run the same way, with its
            # traceback in the log.
            self.failure = f"{self.mode} simulator stopped at step {self.steps}: {exc!r}"
            log.exception("%s", self.failure)

    async def _run_steps(
        self, emitter: Emitter, movie: list[SourceFrame], ph: list[SourceFrame]
    ) -> None:
        interval = self.cfg.update_interval_seconds
        limit = self.cfg.frame_limit
        next_at = time.monotonic()
        while limit < 0 or self.steps < limit:
            if self.steps:
                # Fixed-rate schedule; when behind, skip ahead rather than burst.
                next_at += interval
                delay = next_at - time.monotonic()
                if delay < 0:
                    next_at = time.monotonic()
                await asyncio.sleep(max(delay, 0.0))
            await self._step(emitter, movie, ph, self.steps)
            self.steps += 1
