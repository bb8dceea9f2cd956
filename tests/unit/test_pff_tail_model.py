"""FileTail and count_frames against a model: after any sequence of producer actions they report
the same last frame and count as reading the whole file from the start.

The actions are the ones docs/pff.md lists (append, possibly stopping mid-frame; truncate; replace
with a new inode; rewrite in place from offset 0, with or without a truncate), on real ph256
frames whose headers are either the normal 121 bytes or one byte wider (a field that outgrew its
fixed width), so the size arithmetic is exercised on files whose frame size changes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panoseti_appliance import pff
from panoseti_appliance.products import PH256
from tests.unit.test_pff_read import FRAME, HEADER, REAL

DATA = REAL.read_bytes()


def real_frame(i: int, wide: bool = False) -> bytes:
    """Frame i of the real file, or the same frame with a header one byte wider."""
    frame = DATA[i * FRAME : (i + 1) * FRAME]
    if not wide:
        return frame
    header = json.loads(frame[:HEADER])
    header["quabo_num"] += 10
    return pff.encode_frame(header, frame[HEADER + 3 :], PH256)


def frames(spec: list[tuple[int, bool]]) -> bytes:
    return b"".join(real_frame(i, wide) for i, wide in spec)


runs = st.lists(st.tuples(st.integers(0, 87), st.booleans()), max_size=5).map(frames)
actions = st.one_of(
    st.tuples(st.just("append"), runs, st.integers(0, 1400)),
    st.tuples(st.just("truncate"), st.integers(0, 4000)),
    st.tuples(st.just("replace"), runs),
    st.tuples(st.just("rewrite"), runs, st.booleans()),
)


def whole_file_answer(path: Path) -> pff.PffFrame | str | None:
    """The last complete frame by a full read; "mixed" when old and new frames overlap."""
    try:
        got = list(pff.iter_frames(path, PH256, strict=False))
    except pff.PffError:
        return "mixed"
    return got[-1] if got else None


def key(frame: pff.PffFrame) -> tuple[int, int, bytes, bytes]:
    return frame.index, frame.offset, frame.header_json, frame.pixels


@settings(deadline=None, max_examples=120, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(actions, min_size=1, max_size=10))
def test_file_tail_agrees_with_a_full_read(
    steps: list[tuple[Any, ...]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("tail")
    path = folder / REAL.name
    path.write_bytes(b"")
    tail = pff.FileTail(path, PH256)
    unwritten = b""  # the rest of a frame an append stopped in the middle of
    for step in steps:
        if step[0] == "append":
            blob = unwritten + step[1]
            cut = min(step[2], len(blob))
            with path.open("ab") as fh:
                fh.write(blob[:cut])
            unwritten = blob[cut:]
        else:
            unwritten = b""
            if step[0] == "truncate":
                os.truncate(path, min(step[1], path.stat().st_size))
            elif step[0] == "replace":
                fresh = folder / "fresh"
                fresh.write_bytes(step[1])
                os.replace(fresh, path)
            else:
                with path.open("r+b") as fh:
                    fh.write(step[1])
                    if step[2]:
                        fh.truncate(len(step[1]))
        got = tail.last_frame()
        want = whole_file_answer(path)
        if want == "mixed":
            continue  # an in-place rewrite left old bytes behind: no single right answer
        assert isinstance(want, pff.PffFrame) or want is None
        assert (got and key(got)) == (want and key(want)), step[0]


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=st.lists(st.tuples(st.integers(0, 87), st.booleans()), min_size=1, max_size=8),
    chop=st.integers(0, 700),
)
def test_count_frames_agrees_with_a_full_read(
    spec: list[tuple[int, bool]], chop: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    blob = frames(spec)
    path = tmp_path_factory.mktemp("count") / REAL.name
    path.write_bytes(blob[: max(0, len(blob) - chop)])
    assert pff.count_frames(path) == len(list(pff.iter_frames(path, strict=False)))


def test_narrower_frames_after_the_first_are_not_hidden(tmp_path: Path) -> None:
    """The first frame is wider; the size arithmetic lands on it although more frames follow."""
    path = tmp_path / REAL.name
    path.write_bytes(frames([(0, True), (1, False)]))
    frame = pff.FileTail(path, PH256).last_frame()
    assert frame is not None
    assert (frame.index, frame.offset) == (1, FRAME + 1)
    assert pff.count_frames(path) == 2
    assert frame.pixels == real_frame(1)[HEADER + 3 :]


def test_a_same_size_rewrite_with_other_widths_is_noticed(tmp_path: Path) -> None:
    """[normal, wide, normal] rewritten in place as [normal, normal, wide]: same size, and no
    new bytes at the last good offset, yet the last frame moved."""
    path = tmp_path / REAL.name
    path.write_bytes(frames([(0, False), (1, True), (2, False)]))
    tail = pff.FileTail(path, PH256)
    before = tail.last_frame()
    assert before is not None
    assert (before.index, before.offset) == (2, 2 * FRAME + 1)
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.write(frames([(3, False), (4, False), (5, True)]))
    assert path.stat().st_size == size
    after = tail.last_frame()
    assert after is not None
    assert (after.index, after.offset, after.header["pkt_num"]) == (
        2,
        2 * FRAME,
        json.loads(real_frame(5)[:HEADER])["pkt_num"],
    )
