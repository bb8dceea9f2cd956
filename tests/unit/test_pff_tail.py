"""FileTail on real files that grow, shrink, change header width and get replaced."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from panoseti_appliance import pff
from panoseti_appliance.products import IMG16, PH256

REAL = (
    Path(__file__).parents[1]
    / "data"
    / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"
)
FRAME = 636


@pytest.fixture(scope="module")
def raw() -> bytes:
    return REAL.read_bytes()


@pytest.fixture
def live(tmp_path: Path) -> Path:
    path = tmp_path / REAL.name
    path.write_bytes(b"")
    return path


def pkt(frame: pff.PffFrame | None) -> int | None:
    return None if frame is None else int(frame.header["pkt_num"])


def pkt_at(raw: bytes, index: int) -> int:
    return int(json.loads(raw[index * FRAME : index * FRAME + 121])["pkt_num"])


def assert_last(tail: pff.FileTail, *, index: int, frame_of: int, raw: bytes) -> None:
    """The tail's newest frame is its file's frame `index` and carries raw frame `frame_of`."""
    frame = tail.last_frame()
    assert frame is not None
    assert frame.index == index
    assert pkt(frame) == pkt_at(raw, frame_of)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def test_growing_byte_by_byte(live: Path, raw: bytes) -> None:
    tail = pff.FileTail(live, PH256)
    assert tail.last_frame() is None
    for length in range(1, 3 * FRAME + 2):
        append(live, raw[length - 1 : length])
        frame = tail.last_frame()
        complete = length // FRAME
        if complete == 0:
            assert frame is None, length
        else:
            assert frame is not None, length
            assert (frame.index, frame.offset) == (complete - 1, (complete - 1) * FRAME)
            assert pkt(frame) == pkt_at(raw, complete - 1)
            assert frame.pixels == raw[frame.offset + 124 : frame.offset + FRAME]


def test_growing_in_partial_frames_of_odd_sizes(live: Path, raw: bytes) -> None:
    tail = pff.FileTail(live, PH256)
    pos = 0
    for step in [5, 200, 431, 1, 635, 1272, 999, 3000, 7, 20000]:
        append(live, raw[pos : pos + step])
        pos = min(pos + step, len(raw))
        frame = tail.last_frame()
        if pos < FRAME:
            assert frame is None
        else:
            assert frame is not None
            assert frame.index == pos // FRAME - 1
            assert pkt(frame) == pkt_at(raw, frame.index)


def test_reads_only_the_last_frame_of_a_large_file(tmp_path: Path, raw: bytes) -> None:
    """Measured with the kernel's per-process read counter, not by trusting the code."""
    path = tmp_path / REAL.name
    path.write_bytes(raw * 200)  # 17 600 frames, 11 MB
    tail = pff.FileTail(path, PH256)
    first = tail.last_frame()
    io_path = Path("/proc/self/io")

    def bytes_read() -> int:
        fields = dict(line.split(": ") for line in io_path.read_text().splitlines())
        return int(fields["rchar"])

    before = bytes_read()
    append(path, raw[: 2 * FRAME])
    frame = tail.last_frame()
    spent = bytes_read() - before
    assert first is not None
    assert first.index == 17_599
    assert frame is not None
    assert frame.index == 17_601
    assert spent < 64 * 1024, f"read {spent} bytes to find the last frame of an 11 MB file"


def test_truncation_resets_and_follows_the_new_end(live: Path, raw: bytes) -> None:
    tail = pff.FileTail(live, PH256)
    live.write_bytes(raw[: 10 * FRAME])
    assert pkt(tail.last_frame()) == pkt_at(raw, 9)
    os.truncate(live, 4 * FRAME + 100)
    assert_last(tail, index=3, frame_of=3, raw=raw)
    os.truncate(live, 0)
    assert tail.last_frame() is None
    append(live, raw[5 * FRAME : 7 * FRAME])
    assert_last(tail, index=1, frame_of=6, raw=raw)


def test_replaced_file_with_a_new_inode(live: Path, raw: bytes) -> None:
    tail = pff.FileTail(live, PH256)
    live.write_bytes(raw[: 6 * FRAME])
    assert pkt(tail.last_frame()) == pkt_at(raw, 5)
    # Same size, different content, new inode (write elsewhere, rename over).
    other = live.with_suffix(".new")
    other.write_bytes(raw[40 * FRAME : 46 * FRAME])
    os.replace(other, live)
    assert_last(tail, index=5, frame_of=45, raw=raw)


def test_missing_file_then_created(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / REAL.name
    tail = pff.FileTail(path, PH256)
    assert tail.last_frame() is None
    path.write_bytes(raw[:FRAME])
    assert pkt(tail.last_frame()) == pkt_at(raw, 0)
    path.unlink()
    assert tail.last_frame() is None


def test_header_width_change_falls_back_to_a_sequential_scan(live: Path, raw: bytes) -> None:
    tail = pff.FileTail(live, PH256)
    live.write_bytes(raw[: 3 * FRAME])
    assert pkt(tail.last_frame()) == pkt_at(raw, 2)
    # A field outgrew its width: later frames are one byte longer.
    wide = {"quabo_num": 1, "pkt_num": 99_999_999_999, "pkt_tai": 1, "pkt_nsec": 2}
    wide |= {"tv_sec": 3, "tv_usec": 4}
    wide_frame = pff.encode_frame(wide, bytes(512), PH256)
    assert len(wide_frame) == FRAME + 1
    append(live, wide_frame + wide_frame[:300])
    frame = tail.last_frame()
    assert frame is not None
    assert (frame.index, frame.offset) == (3, 3 * FRAME)
    assert frame.header == wide
    append(live, wide_frame[300:] + wide_frame)
    frame = tail.last_frame()
    assert frame is not None
    assert (frame.index, frame.offset) == (5, 3 * FRAME + 2 * (FRAME + 1))
    # Back to the normal width: the size arithmetic may not fit, the scan still finds it.
    append(live, raw[10 * FRAME : 11 * FRAME])
    assert_last(tail, index=6, frame_of=10, raw=raw)


def test_snapshot_rewritten_in_place(live: Path, raw: bytes) -> None:
    """A one-frame file rewritten at offset 0 (same inode), caught half-written, then complete."""
    tail = pff.FileTail(live, PH256)
    live.write_bytes(raw[:FRAME])
    assert pkt(tail.last_frame()) == pkt_at(raw, 0)
    inode = live.stat().st_ino
    with open(live, "r+b") as fh:  # half of a new, wider frame over the old one
        wide = {"quabo_num": 1, "pkt_num": 12_345_678_901, "pkt_tai": 1, "pkt_nsec": 2}
        wide |= {"tv_sec": 3, "tv_usec": 4}
        new = pff.encode_frame(wide, bytes(512), PH256)
        fh.write(new[:30])  # the header now reads '"pkt_num": 1      5124,': not JSON
    # The torn frame is never reported: either nothing or the frame that was there before.
    assert pkt(tail.last_frame()) in (None, pkt_at(raw, 0))
    with open(live, "r+b") as fh:
        fh.write(new)
        fh.truncate(len(new))
    assert live.stat().st_ino == inode
    frame = tail.last_frame()
    assert frame is not None
    assert frame.index == 0
    assert frame.header == wide
    with open(live, "r+b") as fh:  # rewritten again, same size as the original
        fh.write(raw[7 * FRAME : 8 * FRAME])
        fh.truncate(FRAME)
    assert pkt(tail.last_frame()) == pkt_at(raw, 7)


def test_garbage_at_the_start_is_not_a_frame(live: Path, raw: bytes) -> None:
    tail = pff.FileTail(live, PH256)
    live.write_bytes(b"garbage" + raw[:FRAME])
    assert tail.last_frame() is None
    assert tail.last_frame() is None


def test_wrong_product_is_never_reported(live: Path, raw: bytes) -> None:
    live.write_bytes(raw[: 2 * FRAME] + bytes(3000))
    assert pff.FileTail(live, IMG16).last_frame() is None


def test_corrupt_middle_keeps_the_last_good_frame(live: Path, raw: bytes) -> None:
    tail = pff.FileTail(live, PH256)
    live.write_bytes(raw[: 2 * FRAME] + b"#" * 100 + raw[2 * FRAME : 4 * FRAME])
    assert_last(tail, index=1, frame_of=1, raw=raw)
    assert pkt(tail.last_frame()) == pkt_at(raw, 1)
