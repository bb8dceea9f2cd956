"""FilesystemPollSource on real run directories in tmp_path (inotify and polling)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from panoseti_appliance.daqdata.server.sources.base import SourceError
from panoseti_appliance.daqdata.server.sources.poll import FilesystemPollSource
from tests.producers import (
    append_frames,
    data_file,
    file_frame,
    frame_pixels,
    run_source,
    until,
    write_run,
)

INTERVAL = 0.05


def _source(data_dir: Path, **kw: object) -> FilesystemPollSource:
    modules = kw.pop("module_ids", None)
    assert modules is None or isinstance(modules, frozenset)
    return FilesystemPollSource(data_dir, INTERVAL, modules, **kw)  # type: ignore[arg-type]


def _make_newer(path: Path, than: Path) -> None:
    """Give `path` a later mtime than `than`, whatever the filesystem's timestamp granularity."""
    t = than.stat().st_mtime_ns + 2_000_000_000
    os.utime(path, ns=(t, t))


async def test_missing_data_dir_is_a_start_error(tmp_path: Path) -> None:
    source = _source(tmp_path / "absent")
    with pytest.raises(SourceError, match=r"filesystem_poll source: data_dir '.*absent' does not"):
        async with run_source(source):
            pass


async def test_initial_scan_submits_the_last_complete_frame(tmp_path: Path) -> None:
    path = write_run(tmp_path, 3, "img16", 5)
    with path.open("ab") as f:
        f.write(file_frame("img16", 3, 5)[:100])  # a partial frame being written
    async with run_source(_source(tmp_path)) as got:
        await until(lambda: len(got.frames) == 1, "the initial frame")
    frame = got.frames[0]
    assert (frame.module_id, frame.dp.name, frame.frame_number) == (3, "img16", 4)
    assert frame.file == path.name
    assert frame.pixels == frame_pixels("img16", 3, 4)
    assert frame.header is not None
    assert frame.header["quabo_0"]["pkt_num"] == 4


@pytest.mark.parametrize("force_polling", [False, True], ids=["inotify", "polling"])
async def test_growing_file_is_followed(tmp_path: Path, force_polling: bool) -> None:
    path = write_run(tmp_path, 1, "ph256", 1)
    source = _source(tmp_path, force_polling=force_polling)
    async with run_source(source) as got:
        await until(lambda: len(got.frames) == 1, "frame 0")
        append_frames(path, "ph256", 1, 1)
        await until(lambda: got.frames[-1].frame_number == 1, "frame 1")
        # A partial frame is not a new frame: two completed scans later nothing new was sent.
        whole = file_frame("ph256", 1, 2)
        with path.open("ab") as f:
            f.write(whole[:200])
        scans = source.stats["scans"]
        await until(lambda: source.stats["scans"] >= scans + 2, "two scans after the write")
        assert got.frames[-1].frame_number == 1
        with path.open("ab") as f:
            f.write(whole[200:])
        await until(lambda: got.frames[-1].frame_number == 2, "frame 2")
    numbers = [f.frame_number for f in got.frames]
    assert numbers == [0, 1, 2]


async def test_unchanged_files_send_nothing_again(tmp_path: Path) -> None:
    write_run(tmp_path, 1, "img8", 2)
    source = _source(tmp_path)
    async with run_source(source) as got:
        await until(lambda: source.stats["rescans"] >= 2, "two full re-scans")
        assert len(got.frames) == 1
        assert source.stats["unchanged"] >= 2


async def test_many_appends_give_increasing_frames_ending_with_the_last(tmp_path: Path) -> None:
    path = write_run(tmp_path, 2, "img16", 1)
    source = _source(tmp_path)
    async with run_source(source) as got:
        await until(lambda: len(got.frames) == 1, "frame 0")
        for _ in range(40):
            append_frames(path, "img16", 2, 1)
        await until(lambda: got.frames[-1].frame_number == 40, "the newest frame")
        # Each scan (at most one per interval) reads each (module, dp) once: never more frames
        # than scans, however many frames the writer appended.
        assert len(got.frames) <= source.stats["scans"]
    numbers = [f.frame_number for f in got.frames]
    assert numbers == sorted(set(numbers))


async def test_seqno_rollover_is_followed(tmp_path: Path) -> None:
    write_run(tmp_path, 4, "ph256", 3, seqno=0)
    async with run_source(_source(tmp_path)) as got:
        await until(lambda: len(got.frames) == 1, "seqno 0 frame")
        newer = write_run(tmp_path, 4, "ph256", 1, seqno=1)
        await until(lambda: got.frames[-1].file == newer.name, "seqno 1 frame")
        append_frames(data_file(tmp_path, 4, "ph256", seqno=0), "ph256", 4, 5)
        append_frames(newer, "ph256", 4, 1)
        await until(lambda: got.frames[-1].frame_number == 1, "seqno 1 frame 1")
    assert got.frames[0].file.endswith("seqno_0.pff")
    # The old file kept growing but is no longer the newest: none of its frames came after.
    after = got.frames[got.frames.index(next(f for f in got.frames if f.file == newer.name)) :]
    assert all(f.file == newer.name for f in after)


async def test_new_run_directory_is_followed(tmp_path: Path) -> None:
    old = write_run(tmp_path, 5, "img16", 2, run="obs_A")
    async with run_source(_source(tmp_path)) as got:
        await until(lambda: len(got.frames) == 1, "old run's frame")
        new = write_run(tmp_path, 5, "img16", 3, run="obs_B")
        _make_newer(new.parent, old.parent)
        await until(lambda: got.frames[-1].frame_number == 2, "new run's frame")
        assert got.frames[-1].file == new.name
        append_frames(old, "img16", 5, 10)  # the old run is no longer active
        append_frames(new, "img16", 5, 1)
        await until(lambda: got.frames[-1].frame_number == 3, "new run's next frame")
    assert [f.frame_number for f in got.frames] == [1, 2, 3]


async def test_several_modules_and_module_filter(tmp_path: Path) -> None:
    data_dir = tmp_path / "module_9" / "data"  # a data_dir path containing "module_" too
    for module in (1, 2, 3):
        write_run(data_dir, module, "img8", module)
        write_run(data_dir, module, "ph256", 1)
    (data_dir / "module_x").mkdir()
    (data_dir / "module_7.txt").write_text("not a module directory")
    async with run_source(_source(data_dir, module_ids=frozenset({1, 3}))) as got:
        await until(lambda: len(got.frames) == 4, "frames of modules 1 and 3")
        append_frames(data_file(data_dir, 2, "img8"), "img8", 2, 1)
        append_frames(data_file(data_dir, 3, "img8"), "img8", 3, 1)
        await until(lambda: len(got.frames) == 5, "module 3's new frame")
    assert {(f.module_id, f.dp.name) for f in got.frames} == {
        (1, "img8"),
        (1, "ph256"),
        (3, "img8"),
        (3, "ph256"),
    }
    assert got.of(3, "img8")[-1].frame_number == 3


async def test_non_image_files_are_ignored(tmp_path: Path) -> None:
    run = write_run(tmp_path, 1, "ph256", 1).parent
    (run / "hk.pff").write_bytes(b'{"x": 1}\n\n')
    (run / "daq_config.json").write_text("{}")
    (run / "module_1.daq-active").touch()
    os.mkfifo(run / "read_status_2")
    source = _source(tmp_path)
    async with run_source(source) as got:
        await until(lambda: source.stats["rescans"] >= 1, "a re-scan")
    assert [(f.dp.name, f.frame_number) for f in got.frames] == [("ph256", 0)]
    assert source.stats["read_errors"] == 0


@pytest.mark.parametrize("force_polling", [False, True], ids=["inotify", "polling"])
async def test_data_dir_removed_and_recreated(tmp_path: Path, force_polling: bool) -> None:
    data_dir = tmp_path / "data"
    write_run(data_dir, 1, "img16", 1)
    source = _source(data_dir, force_polling=force_polling)
    async with run_source(source) as got:
        await until(lambda: len(got.frames) == 1, "the first frame")
        shutil.rmtree(data_dir)
        await until(lambda: source.stats["data_dir_vanished"] == 1, "the removal noticed")
        path = write_run(data_dir, 1, "img16", 3)
        await until(lambda: got.frames[-1].frame_number == 2, "a frame of the new tree")
        append_frames(path, "img16", 1, 1)
        # Changes are seen again (not only by the slow safety-net re-scan).
        await until(lambda: got.frames[-1].frame_number == 3, "a change after the return")


async def test_corrupt_file_is_skipped_and_the_source_carries_on(tmp_path: Path) -> None:
    bad = data_file(tmp_path, 1, "img16", seqno=0)
    bad.write_bytes(b'{ "quabo_0": nonsense\n\n*' + bytes(3000))
    source = _source(tmp_path)
    async with run_source(source) as got:
        scans = source.stats["scans"]
        await until(lambda: source.stats["scans"] >= scans + 1, "a scan of the corrupt file")
        assert got.frames == []
        good = write_run(tmp_path, 1, "img16", 2, seqno=1)
        await until(lambda: len(got.frames) == 1, "the frame of the next good file")
    assert (got.frames[0].file, got.frames[0].frame_number) == (good.name, 1)
