"""The PFF reader against the real ph256 recording of module 254 (tests/data).

Every expected value is either a documented fact of the file (tests/data/README.md) or computed
here from the raw bytes with plain numpy and fixed 636-byte offsets, never with the reader, so a
reader bug cannot hide behind an equally wrong expectation.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from panoseti_appliance import pff
from panoseti_appliance.products import PH256

REAL_FILE = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"
)
FRAME_SIZE = 636
HEADER_SIZE = 121
FIRST_HEADER = (
    b'{ "quabo_num": 3, "pkt_num":       5124, "pkt_tai":  229, "pkt_nsec": 999999999, '
    b'"tv_sec": 1754112728, "tv_usec": 985339}'
)


@dataclass(frozen=True)
class RawFrames:
    """The real file decoded by hand: headers (JSON) and int16 images, one per 636-byte slot."""

    headers: list[dict[str, Any]]
    images: np.ndarray  # (frames, 16, 16) int16


def read_raw(path: Path = REAL_FILE) -> RawFrames:
    """Decode the real file without the library: fixed offsets, json.loads, '<i2'."""
    data = path.read_bytes()
    assert len(data) % FRAME_SIZE == 0
    headers: list[dict[str, Any]] = []
    images: list[np.ndarray] = []
    for offset in range(0, len(data), FRAME_SIZE):
        slot = data[offset : offset + FRAME_SIZE]
        assert slot[HEADER_SIZE : HEADER_SIZE + 3] == b"\n\n*"
        headers.append(json.loads(slot[:HEADER_SIZE]))
        images.append(np.frombuffer(slot[HEADER_SIZE + 3 :], "<i2").reshape(16, 16))
    return RawFrames(headers, np.stack(images))


@pytest.fixture(scope="module")
def raw() -> RawFrames:
    return read_raw()


@pytest.fixture(scope="module")
def frames() -> list[pff.PffFrame]:
    return list(pff.iter_frames(REAL_FILE))


def test_the_file_has_88_frames_of_636_bytes(frames: list[pff.PffFrame]) -> None:
    assert REAL_FILE.stat().st_size == 88 * FRAME_SIZE
    assert len(frames) == 88
    assert {f.size for f in frames} == {FRAME_SIZE}
    assert [f.index for f in frames] == list(range(88))
    assert [f.offset for f in frames] == [i * FRAME_SIZE for i in range(88)]
    assert all(f.dp is PH256 for f in frames)


def test_first_header_fields_and_raw_text(frames: list[pff.PffFrame]) -> None:
    assert frames[0].header == {
        "quabo_num": 3,
        "pkt_num": 5124,
        "pkt_tai": 229,
        "pkt_nsec": 999999999,
        "tv_sec": 1754112728,
        "tv_usec": 985339,
    }
    assert frames[0].header_json == FIRST_HEADER
    assert len(frames[0].header_json) == HEADER_SIZE


def test_headers_equal_the_hand_decoded_ones(frames: list[pff.PffFrame], raw: RawFrames) -> None:
    assert [f.header for f in frames] == raw.headers


def test_quabo_numbers_packet_numbers_and_host_clock(frames: list[pff.PffFrame]) -> None:
    assert Counter(f.header["quabo_num"] for f in frames) == {0: 27, 1: 24, 2: 18, 3: 19}
    pkt_nums = [f.header["pkt_num"] for f in frames]
    assert (min(pkt_nums), max(pkt_nums)) == (5124, 12201)
    tv = [f.header["tv_sec"] for f in frames]
    assert tv == sorted(tv)
    assert tv[0] < tv[-1]
    host_us = [pff.header_host_time_us(f.header) for f in frames]
    assert host_us[0] == 1754112728_985339
    assert host_us[-1] == 1754113358_091225


def test_pixels_match_plain_numpy(frames: list[pff.PffFrame], raw: RawFrames) -> None:
    images = np.stack([f.image() for f in frames])
    assert images.dtype == np.int16
    assert images.shape == (88, 16, 16)
    np.testing.assert_array_equal(images, raw.images)
    # The documented facts, checked on the independent decoding as well.
    assert int(raw.images.min()) == -575
    assert int(raw.images.max()) == 3343
    assert int((raw.images < 0).sum()) == 635
    assert raw.images.size == 22528
    per_image_max = raw.images.reshape(88, -1).max(axis=1)
    assert (int(per_image_max.min()), int(per_image_max.max())) == (107, 3343)


def test_negative_pixels_are_unsigned_on_the_wire(frames: list[pff.PffFrame]) -> None:
    """−575 is stored as 64961: the reader must read two's complement, little-endian."""
    where = [(f, np.argwhere(f.image() == -575)) for f in frames]
    frame, hits = next((f, h) for f, h in where if len(h))
    row, col = hits[0]
    k = 2 * (int(row) * 16 + int(col))
    assert int.from_bytes(frame.pixels[k : k + 2], "little") == 64961


def test_every_frame_is_wr_desynchronised(frames: list[pff.PffFrame]) -> None:
    ds = Counter((f.header["tv_sec"] - f.header["pkt_tai"] + 37) % 1024 for f in frames)
    assert ds == {537: 83, 536: 5}
    for f in frames:
        wr = pff.header_wr_time(f.header)
        assert wr.desync
        assert wr.unix_ns is None
        assert wr.decimal == Decimal(0)


def test_49_frames_carry_the_clamped_nanoseconds(frames: list[pff.PffFrame]) -> None:
    assert sum(f.header["pkt_nsec"] == 999_999_999 for f in frames) == 49
    assert all(0 <= f.header["pkt_nsec"] <= 999_999_999 for f in frames)


def test_first_header_re_encodes_byte_identically(frames: list[pff.PffFrame]) -> None:
    first = frames[0]
    assert pff.format_header(PH256, first.header) == FIRST_HEADER
    assert pff.encode_frame(first.header, first.pixels, PH256) == REAL_FILE.read_bytes()[:636]
    # From the decoded image too: int16 back to the little-endian bytes on disk.
    assert pff.encode_frame(first.header, first.image(), PH256)[HEADER_SIZE + 3 :] == first.pixels


def test_every_header_re_encodes_byte_identically(frames: list[pff.PffFrame]) -> None:
    rebuilt = b"".join(pff.encode_frame(f.header, f.pixels, PH256) for f in frames)
    assert rebuilt == REAL_FILE.read_bytes()


def test_reading_from_bytes_and_a_stream_gives_the_same_frames(
    frames: list[pff.PffFrame],
) -> None:
    data = REAL_FILE.read_bytes()
    from_bytes = list(pff.iter_frames(data, PH256))
    with REAL_FILE.open("rb") as fh:
        from_stream = list(pff.iter_frames(fh, PH256))
    for other in (from_bytes, from_stream):
        assert [(f.header, f.pixels, f.offset) for f in other] == [
            (f.header, f.pixels, f.offset) for f in frames
        ]


def test_count_frames_and_learn_frame_size() -> None:
    assert pff.count_frames(REAL_FILE) == 88
    head = REAL_FILE.read_bytes()[:4096]
    assert pff.learn_frame_size(head, PH256) == FRAME_SIZE
    assert pff.learn_frame_size(head[: FRAME_SIZE - 1], PH256) is None


def test_the_bundled_sample_is_the_same_recording() -> None:
    from panoseti_appliance.sample_data import sample_files

    assert sample_files()["ph256"].read_bytes() == REAL_FILE.read_bytes()
