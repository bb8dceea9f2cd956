"""Reading the real ph256 recording, checked against facts computed here from the raw bytes."""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from panoseti_appliance import pff
from panoseti_appliance.products import IMG16, PH256

REAL = (
    Path(__file__).parents[1]
    / "data"
    / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"
)
FRAME = 636
HEADER = 121
FIRST_HEADER = (
    b'{ "quabo_num": 3, "pkt_num":       5124, "pkt_tai":  229, "pkt_nsec": 999999999, '
    b'"tv_sec": 1754112728, "tv_usec": 985339}'
)


def raw_images() -> np.ndarray:
    """All 88 images cut from the raw bytes at the documented stride, with plain numpy."""
    raw = REAL.read_bytes()
    assert len(raw) % FRAME == 0
    frames = np.frombuffer(raw, dtype=np.uint8).reshape(-1, FRAME)
    return frames[:, HEADER + 3 :].copy().view("<i2").reshape(-1, 16, 16)


@pytest.fixture(scope="module")
def frames() -> list[pff.PffFrame]:
    return list(pff.iter_frames(REAL))


def test_real_file_has_88_frames_of_636_bytes(frames: list[pff.PffFrame]) -> None:
    assert len(frames) == 88
    assert {f.size for f in frames} == {FRAME}
    assert [f.offset for f in frames] == [i * FRAME for i in range(88)]
    assert [f.index for f in frames] == list(range(88))
    assert pff.count_frames(REAL) == 88


def test_first_header_is_exact(frames: list[pff.PffFrame]) -> None:
    first = frames[0]
    assert first.header_json == FIRST_HEADER
    assert first.header == {
        "quabo_num": 3,
        "pkt_num": 5124,
        "pkt_tai": 229,
        "pkt_nsec": 999999999,
        "tv_sec": 1754112728,
        "tv_usec": 985339,
    }
    assert all(isinstance(v, int) for v in first.header.values())


def test_header_field_statistics(frames: list[pff.PffFrame]) -> None:
    assert Counter(f.header["quabo_num"] for f in frames) == {0: 27, 1: 24, 2: 18, 3: 19}
    pkt = [f.header["pkt_num"] for f in frames]
    assert (min(pkt), max(pkt)) == (5124, 12201)
    assert sum(f.header["pkt_nsec"] == 999_999_999 for f in frames) == 49
    host = [f.header["tv_sec"] * 1_000_000 + f.header["tv_usec"] for f in frames]
    assert host == sorted(host)
    assert (host[0], host[-1]) == (1754112728985339, 1754113358091225)


def test_headers_match_the_raw_bytes(frames: list[pff.PffFrame]) -> None:
    raw = REAL.read_bytes()
    for i, f in enumerate(frames):
        start = i * FRAME
        assert f.header_json == raw[start : start + HEADER]
        assert f.header == json.loads(raw[start : start + HEADER])


def test_pixels_match_an_independent_decode(frames: list[pff.PffFrame]) -> None:
    expected = raw_images()
    images = np.stack([f.image() for f in frames])
    assert images.dtype == np.int16
    assert images.shape == (88, 16, 16)
    np.testing.assert_array_equal(images, expected)
    assert (int(expected.min()), int(expected.max())) == (-575, 3343)
    assert int((expected < 0).sum()) == 635
    per_image = expected.reshape(88, -1).max(axis=1)
    assert (int(per_image.min()), int(per_image.max())) == (107, 3343)
    # The wire form of -575 is its unsigned two's complement.
    assert int(expected.min().astype("<u2")) == 64961


def test_every_frame_is_wr_desync_by_537_or_536(frames: list[pff.PffFrame]) -> None:
    gaps = Counter(
        (f.header["tv_sec"] - f.header["pkt_tai"] + pff.TAI_UTC_OFFSET_S) % 1024 for f in frames
    )
    assert gaps == {537: 83, 536: 5}
    times = [pff.header_wr_time(f.header) for f in frames]
    assert all(t.desync and t.unix_ns is None for t in times)
    assert {t.decimal for t in times} == {0}


def test_reads_the_same_frames_from_bytes_and_streams(frames: list[pff.PffFrame]) -> None:
    raw = REAL.read_bytes()
    from_bytes = list(pff.iter_frames(raw, PH256))
    from_stream = list(pff.iter_frames(io.BytesIO(raw), PH256))
    for a, b, c in zip(frames, from_bytes, from_stream, strict=True):
        assert a.header == b.header == c.header
        assert a.pixels == b.pixels == c.pixels
        assert a.offset == b.offset == c.offset


class _Trickle(io.RawIOBase):
    """A stream that returns at most 7 bytes per read, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = 7 if size < 0 else min(7, size)
        out, self._data = bytes(self._data[:n]), self._data[n:]
        return out


def test_stream_delivering_a_few_bytes_per_read() -> None:
    raw = REAL.read_bytes()[: 3 * FRAME]
    got = list(pff.iter_frames(_Trickle(raw), PH256))  # type: ignore[arg-type]
    assert [f.header["pkt_num"] for f in got] == [
        json.loads(raw[i * FRAME : i * FRAME + HEADER])["pkt_num"] for i in range(3)
    ]


def test_leading_newlines_before_a_header_are_skipped() -> None:
    raw = REAL.read_bytes()
    data = b"\n\n" + raw[:FRAME] + b"\n" + raw[FRAME : 2 * FRAME]
    got = list(pff.iter_frames(data, PH256))
    assert [f.offset for f in got] == [2, 2 + FRAME + 1]
    assert got[1].header_json == raw[FRAME : FRAME + HEADER]


def test_header_size_is_learned_per_file(tmp_path: Path) -> None:
    """A file whose headers are wider than the real one is read with its own frame size."""
    header = {"quabo_num": 1, "pkt_num": 7, "pkt_tai": 1, "pkt_nsec": 2, "tv_sec": 3, "tv_usec": 4}
    wide = json.dumps(header, indent=8).encode()
    frame = pff.encode_frame(wide, bytes(512), PH256)
    path = tmp_path / "sim.dp_ph256.module_3.seqno_0.pff"
    path.write_bytes(frame * 5)
    assert pff.count_frames(path) == 5
    assert pff.learn_frame_size(frame, PH256) == len(frame) != FRAME
    assert [f.header for f in pff.iter_frames(path)] == [header] * 5


def test_count_frames_falls_back_when_frame_sizes_vary(tmp_path: Path) -> None:
    raw = REAL.read_bytes()
    odd = pff.encode_frame(b'{"quabo_num": 0}', bytes(512), PH256)
    path = tmp_path / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_1.seqno_0.pff"
    path.write_bytes(raw[: 2 * FRAME] + odd + raw[2 * FRAME : 4 * FRAME])
    assert pff.count_frames(path) == 5
    assert pff.count_frames(path, PH256) == len(list(pff.iter_frames(path)))


def test_count_frames_of_an_empty_or_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "sim.dp_ph256.module_3.seqno_0.pff"
    path.write_bytes(b"")
    assert pff.count_frames(path) == 0
    path.write_bytes(REAL.read_bytes()[: FRAME - 1])
    assert pff.count_frames(path) == 0
    assert list(pff.iter_frames(path, strict=False)) == []


# --- malformed input: every case raises PffError naming file, offset and reason ---------------


def _frame_bytes() -> bytes:
    return REAL.read_bytes()[:FRAME]


@pytest.mark.parametrize(
    ("data", "offset", "reason"),
    [
        (_frame_bytes()[:HEADER] + b"\n\n#" + bytes(512), HEADER + 2, "missing '*'"),
        (b"{ not json }\n\n*" + bytes(512), 0, "header is not valid JSON"),
        (b"[1, 2, 3]\n\n*" + bytes(512), 0, "header is not a JSON object"),
        (b'{"a": 1}\n\n*' + bytes(512) + b"X", 523, "expected '{'"),
        (b'"text"\n\n*' + bytes(512), 0, "expected '{'"),
        (b"{" + b" " * 5000, 0, "no end of header"),
        (b"\xff\xfe{}\n\n*" + bytes(512), 0, "expected '{'"),
        (b'{"a": "\xff"}\n\n*' + bytes(512), 0, "not valid JSON"),
    ],
    ids=[
        "missing-star",
        "non-json",
        "array-header",
        "junk-after-frame",
        "string-header",
        "endless-header",
        "binary-junk",
        "bad-utf8",
    ],
)
def test_malformed_frames_raise_pff_error(
    tmp_path: Path, data: bytes, offset: int | None, reason: str
) -> None:
    path = tmp_path / "sim.dp_ph256.module_3.seqno_0.pff"
    path.write_bytes(data)
    with pytest.raises(pff.PffError) as info:
        list(pff.iter_frames(path))
    message = str(info.value)
    assert str(path) in message
    assert reason in message
    assert info.value.file == str(path)
    if offset is not None:
        assert info.value.offset == offset
        assert f"offset {offset}" in message


def test_header_that_is_not_an_object_is_named() -> None:
    for text in (b"[1, 2]", b"42", b'"text"', b"null"):
        with pytest.raises(pff.PffError, match=r"header is not a JSON object: expected '\{'"):
            pff.parse_frame(text + b"\n\n*" + bytes(512), PH256)
    # Nested values of any JSON type are kept as they are.
    frame = pff.parse_frame(b'{"a": [1], "b": null}\n\n*' + bytes(512), PH256)
    assert frame is not None
    assert frame.header == {"a": [1], "b": None}


def test_truncated_header_and_short_image_are_errors_only_at_the_end() -> None:
    raw = _frame_bytes()
    for cut in (60, HEADER + 1, FRAME - 1):
        data = raw + raw[:cut]
        with pytest.raises(pff.PffError, match=f"truncated frame: {cut} bytes") as info:
            list(pff.iter_frames(data, PH256))
        assert info.value.offset == FRAME
        assert len(list(pff.iter_frames(data, PH256, strict=False))) == 1
    # parse_frame itself reports "incomplete" (None) so a reader can wait for more bytes.
    assert pff.parse_frame(raw[:60], PH256) is None
    assert pff.parse_frame(raw[: HEADER + 2], PH256) is None
    assert pff.parse_frame(raw[:-1], PH256) is None


def test_header_of_the_wrong_product_is_reported() -> None:
    frame = pff.parse_frame(_frame_bytes(), PH256)
    assert frame is not None
    assert pff.header_problem(frame.header, PH256) is None
    problem = pff.header_problem(frame.header, IMG16)
    assert problem is not None
    assert "quabo_0" in problem
    assert pff.header_problem({"pkt_num": 1}, PH256) == "ph256 header lacks quabo_num"
    not_int = dict(frame.header, tv_sec=1.5)
    assert pff.header_problem(not_int, PH256) == (
        "ph256 header field tv_sec is missing or not an integer"
    )


def test_unknown_data_product_in_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "sim.dp_img12.module_3.seqno_0.pff"
    path.write_bytes(_frame_bytes())
    with pytest.raises(pff.PffError, match="Unknown data product 'img12'") as info:
        list(pff.iter_frames(path))
    assert str(path) in str(info.value)
    nameless = tmp_path / "frames.pff"
    nameless.write_bytes(_frame_bytes())
    with pytest.raises(pff.PffError, match="no 'dp_<product>' piece; pass the data product"):
        pff.count_frames(nameless)
    assert pff.count_frames(nameless, PH256) == 1
    with pytest.raises(pff.PffError, match="pass dp for a stream"):
        list(pff.iter_frames(_frame_bytes()))


def test_frames_from_a_live_pipe_arrive_before_the_writer_closes() -> None:
    """A reader on a pipe gets each frame as soon as it is whole, not after a full chunk."""
    raw = REAL.read_bytes()
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, os.fdopen(write_fd, "wb") as writer:
        frames = pff.iter_frames(reader, PH256)
        writer.write(raw[: FRAME + 10])
        writer.flush()
        first = next(frames)  # the writer is still open: this must not wait for EOF
        assert first.header_json == FIRST_HEADER
        writer.write(raw[FRAME + 10 : 2 * FRAME])
        writer.close()
        assert [f.index for f in frames] == [1]


def test_images_are_writable_copies(frames: list[pff.PffFrame]) -> None:
    image = frames[0].image()
    image -= 10  # e.g. subtracting a baseline in place
    assert np.array_equal(frames[0].image(), image + 10)
