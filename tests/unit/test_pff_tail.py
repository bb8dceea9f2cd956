"""FileTail follows a real, changing file in tmp_path the way producers change it (pff.md §6).

The file grows chunk by chunk, shrinks, is rewritten in place, replaced by a new inode and gets
a header that changes width; after every change the last complete frame must be the right one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from panoseti_appliance import pff
from panoseti_appliance.products import IMG16, PH256
from tests.unit.test_pff_realfile import FRAME_SIZE, REAL_FILE, RawFrames, read_raw

DATA = REAL_FILE.read_bytes()


@pytest.fixture(scope="module")
def raw() -> RawFrames:
    return read_raw()


def real_frame(i: int) -> bytes:
    return DATA[i * FRAME_SIZE : (i + 1) * FRAME_SIZE]


def wide_frame(i: int) -> bytes:
    """Frame i of the real file with a header one byte wider (quabo_num outgrew its %1u)."""
    header = dict(json.loads(real_frame(i)[:121]))
    header["quabo_num"] = 10 + header["quabo_num"]
    frame = pff.encode_frame(header, real_frame(i)[124:], PH256)
    assert len(frame) == FRAME_SIZE + 1
    return frame


def expect(tail: pff.FileTail, raw: RawFrames, index: int | None, offset: int = -1) -> None:
    frame = tail.last_frame()
    if index is None:
        assert frame is None
        return
    assert frame is not None
    assert frame.index == index
    assert frame.header == raw.headers[index]
    assert frame.offset == (index * FRAME_SIZE if offset < 0 else offset)
    assert frame.image().tolist() == raw.images[index].tolist()


def test_a_missing_file_has_no_frame_until_it_appears(tmp_path: Path, raw: RawFrames) -> None:
    path = tmp_path / REAL_FILE.name
    tail = pff.FileTail(path, PH256)
    assert tail.last_frame() is None
    path.write_bytes(real_frame(0))
    expect(tail, raw, 0)


def test_growing_byte_by_byte_over_the_first_frames(tmp_path: Path, raw: RawFrames) -> None:
    path = tmp_path / REAL_FILE.name
    path.touch()
    tail = pff.FileTail(path, PH256)
    with path.open("ab", buffering=0) as fh:
        for size in range(1, 3 * FRAME_SIZE + 2):
            fh.write(DATA[size - 1 : size])
            complete = size // FRAME_SIZE
            expect(tail, raw, complete - 1 if complete else None)


def test_growing_in_odd_chunks_to_the_whole_file(tmp_path: Path, raw: RawFrames) -> None:
    path = tmp_path / REAL_FILE.name
    path.touch()
    tail = pff.FileTail(path, PH256)
    with path.open("ab", buffering=0) as fh:
        for start in range(0, len(DATA), 97):
            fh.write(DATA[start : start + 97])
            complete = min(start + 97, len(DATA)) // FRAME_SIZE
            expect(tail, raw, complete - 1 if complete else None)
    expect(tail, raw, 87)


def test_truncation_forgets_the_cached_state(tmp_path: Path, raw: RawFrames) -> None:
    path = tmp_path / REAL_FILE.name
    path.write_bytes(DATA)
    tail = pff.FileTail(path, PH256)
    expect(tail, raw, 87)
    os.truncate(path, 10 * FRAME_SIZE + 300)
    expect(tail, raw, 9)
    os.truncate(path, 500)
    expect(tail, raw, None)
    os.truncate(path, 0)
    expect(tail, raw, None)
    path.write_bytes(DATA[: 2 * FRAME_SIZE])
    expect(tail, raw, 1)


def test_a_snapshot_rewritten_in_place_then_truncated(tmp_path: Path, raw: RawFrames) -> None:
    """A one-frame snapshot producer writes at offset 0 without O_TRUNC, then truncates."""
    path = tmp_path / REAL_FILE.name
    path.write_bytes(DATA[: 3 * FRAME_SIZE])
    tail = pff.FileTail(path, PH256)
    expect(tail, raw, 2)
    inode = path.stat().st_ino
    with path.open("r+b", buffering=0) as fh:
        fh.write(real_frame(50)[:300])  # half written: the old frame 2 is still the last one
        expect(tail, raw, 2)
        fh.write(real_frame(50)[300:])
        fh.truncate(FRAME_SIZE)
    assert path.stat().st_ino == inode
    frame = tail.last_frame()
    assert frame is not None
    assert (frame.index, frame.offset) == (0, 0)
    assert frame.header == raw.headers[50]
    assert frame.pixels == real_frame(50)[124:]


def test_a_half_written_snapshot_is_skipped_until_complete(tmp_path: Path, raw: RawFrames) -> None:
    path = tmp_path / REAL_FILE.name
    path.write_bytes(real_frame(0))
    tail = pff.FileTail(path, PH256)
    expect(tail, raw, 0)
    with path.open("r+b", buffering=0) as fh:
        fh.truncate(0)
        fh.write(real_frame(7)[:200])
        assert tail.last_frame() is None
        fh.write(real_frame(7)[200:])
    frame = tail.last_frame()
    assert frame is not None
    assert frame.header == raw.headers[7]


def test_a_replaced_file_with_a_new_inode_is_read_afresh(tmp_path: Path, raw: RawFrames) -> None:
    path = tmp_path / REAL_FILE.name
    path.write_bytes(DATA[: 5 * FRAME_SIZE])
    tail = pff.FileTail(path, PH256)
    expect(tail, raw, 4)
    # Same size, new content, new inode: only the inode says that it changed.
    fresh = tmp_path / "fresh.pff"
    fresh.write_bytes(DATA[40 * FRAME_SIZE : 45 * FRAME_SIZE])
    old_inode = path.stat().st_ino
    os.replace(fresh, path)
    assert path.stat().st_ino != old_inode
    frame = tail.last_frame()
    assert frame is not None
    assert (frame.index, frame.header) == (4, raw.headers[44])
    # A longer replacement with a different header width is learned from its own first frame.
    wider = tmp_path / "wider.pff"
    wider.write_bytes(b"".join(wide_frame(i) for i in range(3)))
    os.replace(wider, path)
    frame = tail.last_frame()
    assert frame is not None
    assert (frame.index, frame.offset, frame.size) == (2, 2 * (FRAME_SIZE + 1), FRAME_SIZE + 1)


@pytest.mark.parametrize("followed_before", [False, True])
def test_a_header_that_changes_width_mid_file_falls_back_to_scanning(
    tmp_path: Path, raw: RawFrames, followed_before: bool
) -> None:
    path = tmp_path / REAL_FILE.name
    path.write_bytes(DATA[: 5 * FRAME_SIZE])
    tail = pff.FileTail(path, PH256)
    if followed_before:
        expect(tail, raw, 4)
    with path.open("ab", buffering=0) as fh:
        for i in range(5, 8):
            fh.write(wide_frame(i))
        frame = tail.last_frame()
        assert frame is not None
        assert frame.index == 7
        assert frame.offset == 5 * FRAME_SIZE + 2 * (FRAME_SIZE + 1)
        assert frame.header["pkt_num"] == raw.headers[7]["pkt_num"]
        assert frame.pixels == real_frame(7)[124:]
        # The scan resumes where it stopped: a partial frame is not new, a complete one is.
        fh.write(real_frame(8)[:400])
        assert tail.last_frame() == frame
        fh.write(real_frame(8)[400:])
    end = 5 * FRAME_SIZE + 3 * (FRAME_SIZE + 1)
    expect(tail, raw, 8, offset=end)


def test_a_file_of_another_product_gives_no_frame(tmp_path: Path) -> None:
    """ph256 bytes followed as img16: the first header lacks quabo_0..3, so nothing is reported."""
    path = tmp_path / "start_2025-08-02T05_31_36Z.dp_img16.bpp_2.module_254.seqno_0.pff"
    path.write_bytes(DATA)
    assert pff.FileTail(path, IMG16).last_frame() is None


def test_corrupt_bytes_in_the_last_slot_are_not_reported(tmp_path: Path, raw: RawFrames) -> None:
    path = tmp_path / REAL_FILE.name
    broken = bytearray(DATA[: 4 * FRAME_SIZE])
    broken[3 * FRAME_SIZE] = ord("x")  # the last frame no longer starts with '{'
    path.write_bytes(bytes(broken))
    tail = pff.FileTail(path, PH256)
    expect(tail, raw, 2)
