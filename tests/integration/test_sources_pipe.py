"""FilesystemPipeSource with real FIFOs and run directories in tmp_path."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from panoseti_appliance.daqdata.server.sources.base import SourceError
from panoseti_appliance.daqdata.server.sources.pipe import FilesystemPipeSource, parse_records
from tests.producers import (
    Collected,
    append_frames,
    data_file,
    run_dir,
    run_source,
    until,
    write_run,
)

PIPE = "read_status_2"
INTERVAL = 0.05


def _source(data_dir: Path, modules: frozenset[int] | None = None) -> FilesystemPipeSource:
    return FilesystemPipeSource(data_dir, INTERVAL, PIPE, modules)


def _fifo(data_dir: Path, module: int, run: str | None = None) -> Path:
    path = (run_dir(data_dir, module) if run is None else run_dir(data_dir, module, run)) / PIPE
    os.mkfifo(path)
    return path


class Writer:
    """The DAQ side of the FIFO: O_WRONLY|O_NONBLOCK, one 10-byte record per frame."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)

    def signal(self, *dps: str) -> None:
        os.write(self.fd, b"".join(dp.encode().ljust(10) for dp in dps))

    def raw(self, data: bytes) -> None:
        os.write(self.fd, data)

    def write_frames(self, path: Path, dp: str, module: int, n: int) -> None:
        """What the DAQ does: append `n` frames to the data file, then signal each of them."""
        append_frames(path, dp, module, n)
        self.signal(*[dp] * n)

    def close(self) -> None:
        os.close(self.fd)


@contextlib.asynccontextmanager
async def _one_run(
    data_dir: Path, module: int, dp: str
) -> AsyncIterator[tuple[FilesystemPipeSource, Collected, Path, Path]]:
    """A run of `module` with one `dp` frame and its FIFO, and the source running, that frame
    received: (source, frames, data file, FIFO)."""
    path = write_run(data_dir, module, dp, 1)
    fifo = _fifo(data_dir, module)
    source = _source(data_dir)
    async with run_source(source) as got:
        await until(lambda: len(got.frames) == 1, "the initial frame")
        yield source, got, path, fifo


def test_parse_records_carries_the_remainder() -> None:
    names, rest = parse_records(b"img16     ph1024    ph2")
    assert names == ["img16", "ph1024"]
    assert rest == b"ph2"
    assert parse_records(b"")[0] == []


async def test_missing_data_dir_is_a_start_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"filesystem_pipe source: data_dir '.*nope' does not"):
        async with run_source(_source(tmp_path / "nope")):
            pass


async def test_signals_trigger_reads_of_the_newest_frame(tmp_path: Path) -> None:
    img = write_run(tmp_path, 1, "img16", 1)
    ph = write_run(tmp_path, 1, "ph256", 1)
    fifo = _fifo(tmp_path, 1)
    source = _source(tmp_path)
    async with run_source(source) as got:
        await until(lambda: len(got.frames) == 2, "the initial frames")
        assert source.fifo_paths() == {1: fifo}
        w = Writer(fifo)
        w.write_frames(img, "img16", 1, 3)
        await until(lambda: got.of(1, "img16")[-1].frame_number == 3, "img16 frame 3")
        append_frames(ph, "ph256", 1, 1)
        w.raw(b"ph25")  # a record split across writes
        w.raw(b"6     ")
        await until(lambda: got.of(1, "ph256")[-1].frame_number == 1, "ph256 frame 1")
        w.signal("bogus", "hk")
        await until(lambda: source.stats["unknown_records"] == 2, "unknown names counted")
        w.close()
    assert [f.frame_number for f in got.of(1, "img16")] == [0, 3]
    assert source.stats["signals"] == 4


async def test_writer_close_and_reopen_without_spinning(tmp_path: Path) -> None:
    async with _one_run(tmp_path, 2, "img8") as (source, got, path, fifo):
        w = Writer(fifo)
        w.write_frames(path, "img8", 2, 1)
        await until(lambda: len(got.frames) == 2, "frame 1")
        w.close()
        # With every writer gone a FIFO would report EOF as readable forever; we hold a
        # writer ourselves, so the loop must not be woken again while the pipe is quiet.
        wakeups, rescans = source.stats["wakeups"], source.stats["rescans"]
        await until(lambda: source.stats["rescans"] >= rescans + 2, "two quiet re-scans")
        assert source.stats["wakeups"] == wakeups
        w = Writer(fifo)
        w.write_frames(path, "img8", 2, 1)
        await until(lambda: len(got.frames) == 3, "frame 2 after the writer reopened")
        w.close()
    assert [f.frame_number for f in got.frames] == [0, 1, 2]


async def test_bursts_are_coalesced(tmp_path: Path) -> None:
    async with _one_run(tmp_path, 3, "ph1024") as (source, got, path, fifo):
        w = Writer(fifo)
        w.write_frames(path, "ph1024", 3, 50)
        await until(lambda: got.frames[-1].frame_number == 50, "the newest frame")
        w.close()
        assert source.stats["signals"] == 50
        # One read per batch, not per record: far fewer frames than signals.
        assert len(got.frames) == source.stats["frames_in"] <= source.stats["batches"] + 1
        assert source.stats["batches"] < 50


async def test_new_module_and_new_run_fifos_are_picked_up(tmp_path: Path) -> None:
    write_run(tmp_path, 1, "img16", 1, run="obs_A")
    old_fifo = _fifo(tmp_path, 1, "obs_A")
    source = _source(tmp_path)
    async with run_source(source) as got:
        await until(lambda: len(got.frames) == 1, "the initial frame")
        # A new module appears.
        new_module = write_run(tmp_path, 7, "img16", 2)
        fifo7 = _fifo(tmp_path, 7)
        await until(lambda: 7 in source.fifo_paths(), "module 7's FIFO")
        w7 = Writer(fifo7)
        w7.signal("img16")
        await until(lambda: got.of(7, "img16") != [], "module 7's frame")
        assert got.of(7, "img16")[-1].file == new_module.name
        # Module 1 starts a new run with its own FIFO.
        new_run = write_run(tmp_path, 1, "img16", 4, run="obs_B")
        fifo_b = _fifo(tmp_path, 1, "obs_B")
        t = old_fifo.parent.stat().st_mtime_ns + 2_000_000_000
        os.utime(new_run.parent, ns=(t, t))
        await until(lambda: source.fifo_paths().get(1) == fifo_b, "module 1's new FIFO")
        wb = Writer(fifo_b)
        wb.signal("img16")
        # Same file name in both runs; the new run's file has 4 frames, the old one 1.
        await until(lambda: got.of(1, "img16")[-1].frame_number == 3, "the new run's frame")
        assert got.of(1, "img16")[-1].file == new_run.name
        w7.close()
        wb.close()


async def test_seqno_rollover_and_module_filter(tmp_path: Path) -> None:
    write_run(tmp_path, 4, "img16", 2, seqno=0)
    write_run(tmp_path, 5, "img16", 2, seqno=0)
    fifo4, fifo5 = _fifo(tmp_path, 4), _fifo(tmp_path, 5)
    source = _source(tmp_path, frozenset({4}))
    async with run_source(source) as got:
        await until(lambda: len(got.frames) == 1, "module 4's initial frame")
        assert source.fifo_paths() == {4: fifo4}
        with pytest.raises(OSError, match=re.escape(os.strerror(errno.ENXIO))):
            Writer(fifo5)  # nobody reads module 5's FIFO: ENXIO, the writer drops records
        rolled = write_run(tmp_path, 4, "img16", 1, seqno=1)
        w = Writer(fifo4)
        w.signal("img16")
        await until(lambda: got.frames[-1].file == rolled.name, "the seqno 1 frame")
        assert got.frames[-1].frame_number == 0
        append_frames(data_file(tmp_path, 4, "img16", seqno=0), "img16", 4, 1)
        w.close()
    assert {f.module_id for f in got.frames} == {4}


def test_a_path_that_is_no_longer_a_fifo_is_not_followed(tmp_path: Path) -> None:
    """Replaced between the scan and the open: counted, and the source keeps running."""
    run = run_dir(tmp_path, 1)
    (run / PIPE).write_text("a regular file now")
    source = _source(tmp_path)
    loop = asyncio.new_event_loop()
    try:
        source._sync(loop, {1: run / PIPE})
    finally:
        loop.close()
    assert source.fifo_paths() == {}
    assert source.stats["open_errors"] == 1
