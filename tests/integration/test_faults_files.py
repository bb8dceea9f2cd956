"""The filesystem sources through the daemon when the run under them is pulled away: a run
directory removed or replaced while it is followed, a file truncated under the reader, a FIFO
unlinked. The daemon must keep answering (Ping, the open stream) and follow what comes next.

The sources' own behaviour on a removed data_dir, a corrupt file and a path that stopped being
a FIFO is in test_sources_poll.py and test_sources_pipe.py; following appends, roll-overs and
new runs through the daemon is in test_daqdata_files.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from google.protobuf import empty_pb2

from panoseti_appliance._proto import daq_data_pb2 as pb
from tests.integration.test_daqdata_files import NEW_RUN, PIPE, _is, _signal
from tests.integration.test_daqdata_support import Collector, DaqData, daqdata, stream_request
from tests.producers import DEFAULT_RUN, append_frames, data_file, file_frame, run_dir, write_run

POLL = {"daqdata": {"filesystem_poll": {"enabled": True}}}
PIPE_SOURCE = {"daqdata": {"filesystem_pipe": {"enabled": True, "pipe_name": PIPE}}}


def _from_now(stream: Collector, match: Callable[[pb.PanoImage], bool]) -> Callable[..., bool]:
    """`match` for the images that arrive from now on: every run has the same file names."""
    before = {id(image) for image in list(stream.images)}  # the list keeps them alive
    return lambda image: id(image) not in before and match(image)


def _ping(d: DaqData) -> None:
    with d.stub() as stub:
        stub.Ping(empty_pb2.Empty(), timeout=10)


def _grow(path: Path, module: int, dp: str, run: Path | None = None) -> Callable[[], None]:
    """One more frame in `path` (and a read-status record in `run` for the pipe source)."""

    def act() -> None:
        append_frames(path, dp, module, 1)
        if run is not None:
            _signal(run, dp)

    return act


def test_poll_follows_a_run_directory_removed_then_created_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = write_run(data, 1, "img16", 3)
    with daqdata(tmp_path, POLL) as d, Collector(d, stream_request()) as stream:
        stream.wait_for(_is(first, 2), "the first run's last frame")
        shutil.rmtree(first.parent)
        _ping(d)
        # The same run name again with a fresh file: its frames count from 0.
        again = data_file(data, 1, "img16")
        recreated = _from_now(stream, _is(again, 0, True))
        stream.wait_for(recreated, "the recreated run", act=_grow(again, 1, "img16"))
        newer = data_file(data, 1, "img16", run=NEW_RUN)
        shutil.rmtree(again.parent)
        later = _from_now(stream, _is(newer, 0, True))
        stream.wait_for(later, "a later run", act=_grow(newer, 1, "img16"))
        _ping(d)


def test_poll_follows_a_file_truncated_under_the_reader(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = write_run(data, 2, "ph256", 5)
    with daqdata(tmp_path, POLL) as d, Collector(d, stream_request()) as stream:
        stream.wait_for(_is(path, 4), "the last frame before the truncation")
        # Cut in the middle of frame 1: the file now holds frame 0 and half of frame 1.
        os.truncate(path, len(file_frame("ph256", 2, 0)) + 100)
        _ping(d)
        with path.open("r+b") as f:  # the writer starts over in the same file
            f.truncate(0)
        append_frames(path, "ph256", 2, 2, first=100)
        rewritten = _from_now(stream, _is(path, 1, True))
        stream.wait_for(rewritten, "the rewritten file's frames", act=_grow(path, 2, "ph256"))
        _ping(d)


def test_pipe_follows_a_fifo_unlinked_then_made_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = run_dir(data, 3, DEFAULT_RUN)
    os.mkfifo(run / PIPE)
    path = write_run(data, 3, "img16", 1)
    with daqdata(tmp_path, PIPE_SOURCE) as d, Collector(d, stream_request()) as stream:
        stream.wait_for(_is(path, 2, True), "a signalled frame", act=_grow(path, 3, "img16", run))
        (run / PIPE).unlink()
        _ping(d)
        os.mkfifo(run / PIPE)
        stream.wait_for(
            _is(path, 6, True),
            "a frame signalled on the new FIFO",
            act=_grow(path, 3, "img16", run),
        )
        # The whole run goes; the next run's FIFO is followed.
        shutil.rmtree(run)
        new_run = run_dir(data, 3, NEW_RUN)
        os.mkfifo(new_run / PIPE)
        newer = data_file(data, 3, "img16", run=NEW_RUN)
        next_run = _from_now(stream, _is(newer, 0, True))
        stream.wait_for(next_run, "the next run's frame", act=_grow(newer, 3, "img16", new_run))
        _ping(d)
