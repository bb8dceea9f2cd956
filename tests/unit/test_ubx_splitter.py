"""The incremental UBX framer shared by the serial link and the emulator, on arbitrary byte streams.

The properties are checked against `valid_starts`, a brute-force list of every offset where a
whole, checksum-valid frame begins: the splitter must return exactly the frames planted between
the garbage whenever those are the only valid frames in the stream, however the stream is chunked.
"""

from __future__ import annotations

import itertools

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pyubx2 import UBXMessage

from panoseti_appliance.ublox.emulator.f9tmessages import nmea_sentence
from panoseti_appliance.ublox.ubxframes import (
    HEADER_LEN,
    MAX_PAYLOAD,
    SYNC,
    FrameSplitter,
    FramingStats,
    RawFrame,
    build_frame,
    checksum,
)

TIM_TP = build_frame(0x0D, 0x01, bytes(range(16)))
ACK = build_frame(0x05, 0x01, b"\x06\x8a")
#: Enough bytes after a stream to complete (and so disprove) any header it may end with; 0xFF
#: because a length field reading FF.. is impossible, while B5 62 00 00 00 00 00 00 is a frame.
FLUSH = b"\xff" * (MAX_PAYLOAD + 8)


def corrupt(frame: bytes) -> bytes:
    """The same frame with its last checksum byte wrong."""
    return frame[:-1] + bytes((frame[-1] ^ 0xFF,))


def valid_starts(stream: bytes) -> list[int]:
    """Every offset where a whole frame with a plausible length and a matching checksum starts."""
    starts = []
    for i in range(len(stream) - HEADER_LEN - 1):
        if stream[i : i + 2] != SYNC:
            continue
        length = int.from_bytes(stream[i + 4 : i + 6], "little")
        end = i + HEADER_LEN + length + 2
        plausible = length <= MAX_PAYLOAD and end <= len(stream)
        if plausible and checksum(stream[i + 2 : end - 2]) == stream[end - 2 : end]:
            starts.append(i)
    return starts


def feed_chunks(splitter: FrameSplitter, stream: bytes, cuts: list[int]) -> list[RawFrame]:
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    out: list[RawFrame] = []
    for a, b in itertools.pairwise(points):
        out += splitter.feed(stream[a:b])
    return out


def accounted(stats: FramingStats) -> int:
    return stats.framed_bytes + stats.skipped_bytes + stats.pending_bytes


frames_st = st.builds(
    build_frame,
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=48),
)


@st.composite
def garbage_st(draw: st.DrawFn) -> bytes:
    """Noise a serial line really carries: sync halves, NMEA, truncated and broken frames."""
    frame = draw(frames_st)
    pieces: st.SearchStrategy[bytes] = st.one_of(
        st.binary(max_size=24),
        st.sampled_from([b"\xb5", b"\xb5\x62", b"\xb5\xb5", b"\x62", b"\xb5\x62\xb5"]),
        st.just(nmea_sentence("GNTXT,01,01,02,noise")),
        st.just(corrupt(frame)),
        st.integers(0, len(frame) - 1).map(lambda n: frame[:n]),  # a truncated frame
        st.integers(MAX_PAYLOAD + 1, 0xFFFF).map(
            lambda n: SYNC + b"\x0d\x01" + n.to_bytes(2, "little")
        ),
    )
    return draw(pieces)


def interleave(
    pairs: list[tuple[list[bytes], bytes]], tail: list[bytes]
) -> tuple[bytes, list[int]]:
    """The stream of garbage and frames, and the offset of each frame in it."""
    stream, planted = b"", []
    for noise, frame in pairs:
        stream += b"".join(noise)
        planted.append(len(stream))
        stream += frame
    return stream + b"".join(tail), planted


pairs_st = st.lists(st.tuples(st.lists(garbage_st(), max_size=4), frames_st), max_size=6)


@settings(max_examples=300, deadline=None)
@given(pairs_st, st.lists(garbage_st(), max_size=4), st.lists(st.integers(0, 10_000), max_size=12))
def test_garbage_between_frames_yields_exactly_the_frames_in_order(
    pairs: list[tuple[list[bytes], bytes]], tail: list[bytes], cuts: list[int]
) -> None:
    stream, planted = interleave(pairs, tail)
    stream += FLUSH
    # Unless the garbage (with its neighbours) happens to hold a valid frame of its own:
    assume(valid_starts(stream) == planted)
    splitter = FrameSplitter()
    frames = feed_chunks(splitter, stream, cuts)
    assert [f.raw for f in frames] == [frame for _, frame in pairs]
    assert all(f.payload == f.raw[HEADER_LEN:-2] for f in frames)
    assert [f.end for f in frames] == [p + len(f.raw) for p, f in zip(planted, frames, strict=True)]
    stats = splitter.stats
    assert stats.frames == len(pairs)
    assert stats.framed_bytes == sum(len(frame) for _, frame in pairs)
    assert stats.pending_bytes == 0
    assert accounted(stats) == len(stream)


@settings(max_examples=300, deadline=None)
@given(pairs_st, st.lists(garbage_st(), max_size=4))
def test_giving_up_on_a_stalled_candidate_releases_the_frames_behind_it(
    pairs: list[tuple[list[bytes], bytes]], tail: list[bytes]
) -> None:
    stream, planted = interleave(pairs, tail)
    assume(valid_starts(stream + FLUSH) == planted)
    splitter = FrameSplitter()
    frames = splitter.feed(stream)
    while splitter.stats.pending_bytes > 1:  # what the link does when the line stays quiet
        frames += splitter.give_up()
    assert [f.raw for f in frames] == [frame for _, frame in pairs]
    assert accounted(splitter.stats) == len(stream)
    assert splitter.give_up() == []
    assert accounted(splitter.stats) == len(stream)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(garbage_st(), frames_st), max_size=10),
    st.lists(st.integers(0, 10_000), max_size=16),
)
def test_chunking_never_changes_the_result(pieces: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(pieces)
    whole = FrameSplitter()
    expected = whole.feed(stream)
    chunked = FrameSplitter()
    assert feed_chunks(chunked, stream, cuts) == expected
    assert chunked.stats == whole.stats
    assert accounted(chunked.stats) == len(stream)
    # What is returned are valid frames of the stream, in order and without overlap.
    starts, pos = valid_starts(stream), 0
    for frame in expected:
        pos = stream.index(frame.raw, pos)
        assert pos in starts
        pos += len(frame.raw)


def test_stray_sync_byte_before_a_frame_costs_one_byte_not_the_frame() -> None:
    splitter = FrameSplitter()
    assert splitter.feed(b"\xb5") == []
    assert splitter.stats.pending_bytes == 1  # could still be the first half of a sync pair
    assert [f.raw for f in splitter.feed(TIM_TP)] == [TIM_TP]
    assert splitter.stats == FramingStats(
        frames=1, framed_bytes=len(TIM_TP), skipped_bytes=1, pending_bytes=0
    )


def test_bad_checksum_is_counted_and_the_next_frame_kept() -> None:
    splitter = FrameSplitter()
    assert [f.raw for f in splitter.feed(corrupt(ACK) + TIM_TP)] == [TIM_TP]
    assert splitter.stats.bad_checksums == 1
    assert splitter.stats.skipped_bytes == len(ACK)


def test_noise_and_broken_frames_across_awkward_chunk_boundaries() -> None:
    good = UBXMessage.config_poll(0, 0, ["CFG_TP_FREQ_TP1"]).serialize()
    stream = (
        b"$GNGGA,1*00\r\n\xb5" + corrupt(good) + b"\xd3\x00\x00junk" + good + b"\xb5\x62" + good
    )
    splitter = FrameSplitter()
    frames = feed_chunks(splitter, stream, list(range(0, len(stream), 3)))
    assert [f.raw for f in frames] == [good, good]
    assert frames[0].identity == "CFG-VALGET"
    assert frames[0].payload == good[6:-2]
    assert splitter.stats.bad_checksums == 1
    assert accounted(splitter.stats) == len(stream)


def test_an_impossible_length_is_dropped_at_once_instead_of_waited_for() -> None:
    good = build_frame(0x0A, 0x04)
    splitter = FrameSplitter()
    assert [f.raw for f in splitter.feed(b"\xb5\x62\x0a\x04\xff\xff" + good)] == [good]
    assert splitter.stats.bad_lengths == 1
    assert splitter.stats.skipped_bytes == 6


def test_a_bogus_header_delays_the_frames_behind_it_but_loses_none() -> None:
    # A doubled sync reads as class 0xB5 id 0x62 with TIM-TP's class/id as its length (269).
    bogus_length = int.from_bytes(TIM_TP[2:4], "little")
    splitter = FrameSplitter()
    assert splitter.feed(SYNC + TIM_TP) == []
    assert splitter.stats.pending_bytes == 2 + len(TIM_TP)
    followers = [ACK] * (bogus_length // len(ACK) + 1)
    frames = splitter.feed(b"".join(followers))
    assert [f.raw for f in frames] == [TIM_TP, *followers]
    assert frames[0].end == 2 + len(TIM_TP)  # it ended in the first chunk
    assert splitter.stats.bad_checksums == 1
    assert splitter.stats.skipped_bytes == 2
