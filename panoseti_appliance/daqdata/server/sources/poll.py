"""Filesystem poll source (docs/ingestion.md): sample the newest frame of each growing file.

The DAQ appends every frame (up to ~1000 frames/s per module) to files in the active run
directory; clients only need a recent one, so this source watches data_dir recursively and, at
most once per interval, reads the last complete frame of each changed file. Change detection is
inotify by default (watchfiles); `force_polling=True` polls instead, for network filesystems
where inotify sees nothing. A full re-scan every max(1 s, interval) is the safety net either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from pathlib import Path

import watchfiles

from panoseti_appliance.daqdata.server.frame import FrameSink
from panoseti_appliance.daqdata.server.sources.base import (
    deliver,
    format_counts,
)
from panoseti_appliance.daqdata.server.sources.rundir import RunDirSource, module_of

log = logging.getLogger(__name__)


class FilesystemPollSource(RunDirSource):
    """Follows `data_dir/module_<id>/<newest obs_*>/*.pff` and submits each file's newest frame."""

    name = "filesystem_poll"

    def __init__(
        self,
        data_dir: Path,
        interval_s: float,
        module_ids: frozenset[int] | None,
        *,
        force_polling: bool = False,
    ) -> None:
        super().__init__(data_dir, interval_s, module_ids)
        self.force_polling = force_polling

    async def run(self, sink: FrameSink, ready: asyncio.Event) -> None:
        await asyncio.to_thread(self.require_data_dir)
        await self._submit(sink, None)
        log.info(
            "%s source: watching %s (%s, interval %gs)",
            self.name,
            self.data_dir,
            "polling" if self.force_polling else "inotify",
            self.interval_s,
        )
        ready.set()
        try:
            while True:
                await self._watch(sink)
                # data_dir vanished (unmounted, removed): wait for it, then watch it afresh.
                self.stats.add("data_dir_vanished")
                log.warning("%s source: %s vanished; waiting for it", self.name, self.data_dir)
                # A remount happens outside the process: no event to wait on, only a look.
                while not await asyncio.to_thread(self.data_dir.is_dir):  # noqa: ASYNC110
                    await asyncio.sleep(self.rescan_s)
                log.info("%s source: %s is back", self.name, self.data_dir)
                await self._submit(sink, None)
        finally:
            log.info("%s source: stopped; %s", self.name, format_counts(self.stats.snapshot()))

    async def _watch(self, sink: FrameSink) -> None:
        """Submit new frames as changes arrive, until cancelled or data_dir itself is deleted."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        changes = self._changes(stop)
        last_scan = loop.time()
        try:
            async for modules in changes:
                if modules is None:
                    return
                started = loop.time()
                if started - last_scan >= self.rescan_s:
                    await self._submit(sink, None)
                    # Counted once the re-scan is done, so a reader of the stats never sees
                    # a re-scan whose results are not yet in the other counters.
                    self.stats.add("rescans")
                    last_scan = started
                elif modules:
                    await self._submit(sink, modules)
                # At most one frame per (module, dp) per interval, whatever the DAQ's rate;
                # changes arriving meanwhile are collected by the watcher.
                await asyncio.sleep(max(0.0, self.interval_s - (loop.time() - started)))
        finally:
            stop.set()
            await changes.aclose()

    async def _changes(self, stop: asyncio.Event) -> AsyncGenerator[set[int] | None, None]:
        """Module ids with changed files, batch by batch (an empty set at least every re-scan
        period); None once data_dir itself was deleted."""
        interval_ms = max(1, round(self.interval_s * 1000))
        root = str(self.data_dir)
        async for batch in watchfiles.awatch(
            self.data_dir,
            watch_filter=None,
            debounce=interval_ms,
            step=min(50, interval_ms),
            stop_event=stop,
            rust_timeout=round(self.rescan_s * 1000),
            yield_on_timeout=True,
            force_polling=self.force_polling,
            poll_delay_ms=interval_ms,
            recursive=True,
            ignore_permission_denied=True,
        ):
            self.stats.add("wakeups")
            modules: set[int] = set()
            for change, raw in batch:
                if raw == root and change == watchfiles.Change.deleted:
                    yield None
                    return
                module = module_of(self.data_dir, Path(raw))
                if module is not None and (self.module_ids is None or module in self.module_ids):
                    modules.add(module)
            yield modules

    async def _submit(self, sink: FrameSink, modules: set[int] | None) -> None:
        frames = await asyncio.to_thread(
            self._reader.read_modules, self.data_dir, self.module_ids, modules
        )
        for frame in frames:
            deliver(sink, frame, self.stats, log)
        self.stats.add("scans")
