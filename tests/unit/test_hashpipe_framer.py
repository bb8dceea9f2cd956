"""The Hashpipe socket stream parser (docs/ingestion.md): exact framing, validation, resync."""

from __future__ import annotations

import itertools
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panoseti_appliance.daqdata.server.sources.base import SourceStats
from panoseti_appliance.daqdata.server.sources.hashpipe import (
    FRAME_MARKER,
    HEADER_WINDOW,
    HashpipeFramer,
)
from panoseti_appliance.pff import header_problem
from panoseti_appliance.products import ALL, BY_NAME, DataProduct
from tests.producers import SentFrame, frame_fields, garbage, socket_frame

DATA = Path(__file__).resolve().parents[1] / "data"
REAL_PH256 = DATA / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"
REAL_FRAME_SIZE = 636

Parsed = tuple[int, dict[str, Any], bytes]


def _expected(frames: list[SentFrame]) -> list[Parsed]:
    return [(f.module, json.loads(f.header), f.pixels) for f in frames]


def _feed_all(framer: HashpipeFramer, chunks: list[bytes]) -> list[Parsed]:
    out: list[Parsed] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    return out


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@pytest.mark.parametrize("dp", ALL, ids=lambda d: d.name)
def test_socket_layout_frames_of_every_product(dp: DataProduct) -> None:
    frames = [socket_frame(dp, m, i) for i, m in enumerate([0, 7, 65535, 256, 7])]
    framer = HashpipeFramer(dp)
    out = framer.feed(b"".join(f.wire for f in frames))
    assert out == _expected(frames)
    assert framer.stats.snapshot() == {"frames_in": 5}
    assert framer.buffered == 0


def test_module_id_is_unsigned_big_endian() -> None:
    f = socket_frame("ph256", 0x0102, 0)
    assert f.wire[:2] == b"\x01\x02"
    assert HashpipeFramer(BY_NAME["ph256"]).feed(f.wire)[0][0] == 258


def test_real_recording_file_layout_headers() -> None:
    """The 88 real ph256 frames, each prefixed like a socket frame, all come out intact."""
    data = REAL_PH256.read_bytes()
    frames = [data[i : i + REAL_FRAME_SIZE] for i in range(0, len(data), REAL_FRAME_SIZE)]
    assert len(frames) == 88
    stream = b"".join(struct.pack(">H", 254) + f for f in frames)
    out = HashpipeFramer(BY_NAME["ph256"]).feed(stream)
    assert len(out) == 88
    assert out[0][1]["pkt_num"] == 5124
    assert out[0][1]["quabo_num"] == 3
    assert all(module == 254 for module, _, _ in out)
    assert [px for _, _, px in out] == [f[124:] for f in frames]


def test_file_layout_four_quabo_header_accepted() -> None:
    from panoseti_appliance import pff

    dp = BY_NAME["img16"]
    header = pff.format_header(dp, frame_fields(dp, 5), "file")
    f = socket_frame(dp, 9, 5, header=header)
    assert HashpipeFramer(dp).feed(f.wire) == _expected([f])


def test_frame_is_held_until_complete_then_emitted() -> None:
    dp = BY_NAME["img16"]
    f = socket_frame(dp, 1, 0)
    framer = HashpipeFramer(dp)
    assert framer.feed(f.wire[:-1]) == []
    assert framer.buffered == len(f.wire) - 1
    assert framer.feed(f.wire[-1:]) == _expected([f])
    assert framer.feed(b"") == []


def test_torn_frame_is_dropped_and_the_next_recovered() -> None:
    dp = BY_NAME["ph256"]
    a, torn, b = socket_frame(dp, 1, 0), socket_frame(dp, 1, 1), socket_frame(dp, 2, 2)
    framer = HashpipeFramer(dp)
    out = framer.feed(a.wire + torn.wire[:300] + b.wire)
    assert out == _expected([a, b])
    stats = framer.stats.snapshot()
    assert stats["torn"] == 1
    assert stats["garbage_bytes"] == 300
    assert stats["resyncs"] == 1
    assert stats["frames_in"] == 2


def test_frame_torn_in_its_last_bytes_then_successor_recovered() -> None:
    """The successor's id went into the torn frame's pixels; the reader re-stitches it."""
    dp = BY_NAME["ph256"]
    torn, b, c = socket_frame(dp, 1, 0), socket_frame(dp, 2, 1), socket_frame(dp, 3, 2)
    stream = torn.wire[:-2] + b.wire + c.wire
    framer = HashpipeFramer(dp)
    # The read ends exactly where the torn frame should end: it cannot be told apart yet.
    first = framer.feed(stream[: len(torn.wire)])
    rest = framer.feed(stream[len(torn.wire) :])
    assert len(first) == 1
    assert first[0][2][-2:] == b.wire[:2]
    assert rest == _expected([b, c])
    assert framer.stats["torn_emitted"] == 1


def test_garbage_between_frames_is_counted_and_skipped() -> None:
    dp = BY_NAME["img8"]
    a, b = socket_frame(dp, 4, 0), socket_frame(dp, 4, 1)
    junk = garbage(5000, seed=3)
    framer = HashpipeFramer(dp)
    assert framer.feed(a.wire + junk + b.wire) == _expected([a, b])
    stats = framer.stats.snapshot()
    assert stats["garbage_bytes"] == len(junk)
    assert stats["bad_start"] == 1


def test_garbage_without_marker_keeps_only_a_small_tail() -> None:
    framer = HashpipeFramer(BY_NAME["ph256"])
    assert framer.feed(garbage(100_000, seed=1)) == []
    assert framer.buffered <= 64
    assert framer.stats["garbage_bytes"] >= 100_000 - 64


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b'{ "quabo_num": 1, "pkt_num": ', "bad_header"),  # not JSON
        (b'{ "quabo_num": 1 }', "bad_header"),  # lacks fields
        (b'{ "quabo_0": 1, "quabo_num": "x"}', "bad_header"),
        (
            b'{ "quabo_num": 1, "pkt_num": 1, "pkt_tai": 1, "pkt_nsec": 1, "tv_sec": 1, "tv_usec": true}',
            "bad_header",
        ),
        (b'{ "quabo_\xff": 1}', "bad_header"),  # not UTF-8
    ],
)
def test_invalid_headers_are_counted_by_reason(header: bytes, reason: str) -> None:
    dp = BY_NAME["ph256"]
    good = socket_frame(dp, 5, 0)
    framer = HashpipeFramer(dp)
    out = framer.feed(b"\x00\x05" + header + b"\n\n*" + b"\x00" * dp.bytes_per_image + good.wire)
    assert out == _expected([good])
    assert framer.stats[reason] == 1


def test_header_longer_than_the_window_is_rejected() -> None:
    dp = BY_NAME["ph256"]
    long_header = b'{ "quabo_num": 1' + b" " * HEADER_WINDOW + b"}"
    good = socket_frame(dp, 5, 0)
    framer = HashpipeFramer(dp)
    out = framer.feed(b"\x00\x05" + long_header + b"\n\n*" + b"\x00" * 512 + good.wire)
    assert out == _expected([good])
    assert framer.stats["no_header_end"] == 1


def test_wrong_product_header_is_rejected() -> None:
    """A 4-quabo header arriving on the ph256 socket is not a ph256 frame."""
    img16 = socket_frame("img16", 1, 0)
    framer = HashpipeFramer(BY_NAME["ph256"])
    assert framer.feed(img16.wire) == []
    assert framer.drops >= 1


def test_header_problem_names_the_field() -> None:
    dp = BY_NAME["img16"]
    fields = frame_fields(dp, 0)
    assert header_problem(fields, dp) is None
    del fields["quabo_2"]["tv_usec"]
    assert (
        header_problem(fields, dp)
        == "img16 header field quabo_2.tv_usec is missing or not an integer"
    )
    assert header_problem([], dp) == "header is not a JSON object"
    assert header_problem({"quabo_0": {}}, dp) == "img16 header lacks quabo_1, quabo_2, quabo_3"


def test_connection_counts_also_reach_the_source() -> None:
    source = SourceStats()
    dp = BY_NAME["ph256"]
    a, b = HashpipeFramer(dp, source), HashpipeFramer(dp, source)
    a.feed(socket_frame(dp, 1, 0).wire)
    b.feed(socket_frame(dp, 1, 1).wire + garbage(10))
    assert a.stats["frames_in"] == b.stats["frames_in"] == 1
    assert source["frames_in"] == 2


# --- properties --------------------------------------------------------------------------------

_products = st.sampled_from(ALL)
_modules = st.integers(min_value=0, max_value=65535)


@st.composite
def _valid_streams(draw: st.DrawFn) -> tuple[DataProduct, list[SentFrame]]:
    dp = draw(_products)
    modules = draw(st.lists(_modules, min_size=1, max_size=6))
    return dp, [socket_frame(dp, m, i) for i, m in enumerate(modules)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_valid_streams(), st.lists(st.integers(min_value=0), max_size=40))
def test_any_chunking_of_a_valid_stream_yields_the_same_frames(
    stream: tuple[DataProduct, list[SentFrame]], cuts: list[int]
) -> None:
    dp, frames = stream
    data = b"".join(f.wire for f in frames)
    out = _feed_all(HashpipeFramer(dp), _split(data, cuts))
    assert out == _expected(frames)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_products, st.integers(min_value=0, max_value=65535))
def test_byte_at_a_time_yields_the_frames(dp: DataProduct, module: int) -> None:
    frames = [socket_frame(dp, module, 0), socket_frame(dp, module + 1 & 0xFFFF, 1)]
    data = b"".join(f.wire for f in frames)
    assert _feed_all(HashpipeFramer(dp), [data[i : i + 1] for i in range(len(data))]) == (
        _expected(frames)
    )


# A damaged stream is a sequence of segments: intact frames, torn frames (a strict prefix of a
# frame, as a short writev leaves) and arbitrary garbage bytes without a frame marker.
_Segment = tuple[str, bytes, SentFrame | None]


@st.composite
def _damaged_streams(draw: st.DrawFn) -> tuple[DataProduct, list[_Segment], list[int]]:
    """Segments plus read boundaries, biased to the hard cases: a frame torn in its last few
    bytes, and a read that ends exactly where that torn frame would have ended."""
    dp = draw(_products)
    kinds = draw(st.lists(st.sampled_from(["frame", "frame", "torn", "garbage"]), max_size=10))
    segments: list[_Segment] = []
    boundaries: list[int] = []
    at = 0
    for i, kind in enumerate(kinds):
        if kind == "garbage":
            junk = draw(st.binary(min_size=1, max_size=700).filter(_no_marker))
            segments.append(("garbage", junk, None))
            at += len(junk)
            continue
        f = socket_frame(dp, draw(_modules), i)
        if kind == "torn":
            size = len(f.wire)
            short = st.integers(min_value=size - 24, max_value=size - 1)
            keep = draw(st.integers(min_value=1, max_value=size - 1) | short)
            segments.append(("torn", f.wire[:keep], f))
            if draw(st.booleans()):
                boundaries.append(at + len(f.wire))
            at += keep
        else:
            segments.append(("frame", f.wire, f))
            at += len(f.wire)
        if draw(st.booleans()):
            boundaries.append(at)
    return dp, segments, boundaries


def _no_marker(data: bytes) -> bool:
    return FRAME_MARKER.search(data) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_damaged_streams(), st.lists(st.integers(min_value=0), max_size=30))
def test_damage_never_raises_and_every_intact_frame_is_recovered(
    stream: tuple[DataProduct, list[_Segment], list[int]], cuts: list[int]
) -> None:
    """What must hold, whatever the damage and however the bytes are chunked.

    - feed never raises, and every call returns (no endless loop);
    - EVERY intact frame is emitted, in stream order, whatever precedes or follows it (a torn
      frame, garbage, or both), provided the garbage holds no frame marker and no valid header;
    - the only other frames emitted are torn ones whose header was complete and whose missing
      bytes were filled by what followed (garbage, or the first bytes of the next frame, which
      the reader then re-stitches): the format cannot tell those apart, so at most one extra
      frame per torn frame, always with that torn frame's module and header.
    """
    dp, segments, boundaries = stream
    data = b"".join(raw for _, raw, _ in segments)
    out = _feed_all(HashpipeFramer(dp), _split(data, cuts + boundaries))
    intact = [f for kind, _, f in segments if kind == "frame" and f is not None]
    torn = [f for kind, _, f in segments if kind == "torn" and f is not None]
    expected = _expected(intact)
    it = iter(out)
    extras = []
    for want in expected:
        for got in it:
            if got == want:
                break
            extras.append(got)
        else:
            pytest.fail(f"intact frame of module {want[0]} not recovered")
    extras.extend(it)
    assert len(extras) <= len(torn)
    torn_ids = {(f.module, f.header) for f in torn}
    for module, header, _ in extras:
        assert any(m == module and json.loads(h) == header for m, h in torn_ids)
