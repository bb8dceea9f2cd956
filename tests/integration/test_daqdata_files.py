"""The filesystem sources through the daemon: run files written the way the DAQ writes them
(docs/ingestion.md, "File polling") and, for the pipe source, the 10-byte read-status records.

Both tests follow a seqno roll-over and then a new run directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from pathlib import Path

from panoseti_appliance._proto import daq_data_pb2 as pb
from tests.integration.test_daqdata_support import Collector, daqdata, pkt_num, stream_request
from tests.producers import DEFAULT_RUN, append_frames, data_file, run_dir, write_run

NEW_RUN = "obs_TEST.start_2025-08-02T06_00_00Z.runtype_sci-data.pffd"
PIPE = "read_status_2"


def _is(file: Path, frame_number: int, at_least: bool = False) -> Callable[[pb.PanoImage], bool]:
    """Frame `frame_number` of `file` (or any later one, where frames keep being appended)."""

    def match(image: pb.PanoImage) -> bool:
        if image.file != file.name:
            return False
        return (
            image.frame_number >= frame_number if at_least else image.frame_number == frame_number
        )

    return match


def _signal(run: Path, dp: str) -> None:
    """Write one read-status record as Hashpipe does; no reader yet (ENXIO) drops it."""
    try:
        fd = os.open(run / PIPE, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ENXIO:
            raise
        return
    with contextlib.suppress(BlockingIOError):
        os.write(fd, dp.encode().ljust(10))
    os.close(fd)


def test_poll_source_follows_appends_rollover_and_new_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = write_run(data, 1, "ph256", 3)
    extra = {"daqdata": {"filesystem_poll": {"enabled": True}}}
    with daqdata(tmp_path, extra) as d, Collector(d, stream_request()) as stream:
        image = stream.wait_for(_is(first, 2), "the last frame of the first file")
        assert (image.module_id, pkt_num(image)) == (1, 2)
        append_frames(first, "ph256", 1, 2)
        stream.wait_for(_is(first, 4), "the appended frame")
        rolled = write_run(data, 1, "ph256", 2, seqno=1)
        stream.wait_for(_is(rolled, 1), "the seqno_1 file")
        newer = data_file(data, 1, "ph256", seqno=0, run=NEW_RUN)
        append_frames(newer, "ph256", 1, 1)
        stream.wait_for(_is(newer, 0), "the new run's file")


def test_pipe_source_follows_signals_rollover_and_new_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = run_dir(data, 2, DEFAULT_RUN)
    os.mkfifo(run / PIPE)
    first = write_run(data, 2, "img16", 1)
    extra = {"daqdata": {"filesystem_pipe": {"enabled": True, "pipe_name": PIPE}}}
    with daqdata(tmp_path, extra) as d, Collector(d, stream_request()) as stream:
        stream.wait_for(_is(first, 0), "the frame present at start")

        def grow(path: Path, run: Path) -> Callable[[], None]:
            def act() -> None:
                append_frames(path, "img16", 2, 1)
                _signal(run, "img16")

            return act

        stream.wait_for(_is(first, 3, True), "a signalled frame", act=grow(first, run))
        rolled = data_file(data, 2, "img16", seqno=1)
        stream.wait_for(_is(rolled, 2, True), "the seqno_1 file", act=grow(rolled, run))
        new_run = run_dir(data, 2, NEW_RUN)
        os.mkfifo(new_run / PIPE)
        newer = data_file(data, 2, "img16", run=NEW_RUN)
        stream.wait_for(_is(newer, 2, True), "the new run's FIFO", act=grow(newer, new_run))
