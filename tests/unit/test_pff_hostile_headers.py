"""Header values that are valid JSON but hostile to naive code: the reader still answers calmly.

A corrupt or crafted header can nest brackets deeper than the JSON decoder's recursion limit, or
hold numbers such as 1e400 that parse to an infinite float. Ingestion must turn the first into a
PffError (one bad frame, not a dead source) and read the second as "no WR time" (desync).
Headers that parse but could not travel to clients as a protobuf Struct (an integer beyond a
double, nesting deeper than decoders accept) fail `header_problem`, so no source ingests them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.protobuf.struct_pb2 import Struct
from hypothesis import given, settings
from hypothesis import strategies as st

from panoseti_appliance import pff
from panoseti_appliance.products import PH256

HOST = 1754112728


@pytest.mark.parametrize(("opener", "depth"), [(b"[", 3000), (b'{"":', 1010)])
def test_a_header_nested_past_the_decoder_limit_is_a_pff_error(opener: bytes, depth: int) -> None:
    header = b'{"a": ' + opener * depth
    blob = header + b"\n\n*" + bytes(PH256.bytes_per_image)
    assert len(header) < pff.MAX_HEADER_BYTES
    with pytest.raises(pff.PffError, match="header is not valid JSON") as info:
        pff.parse_frame(blob, PH256, file="hostile.pff")
    assert info.value.offset == 0
    assert info.value.file == "hostile.pff"


def test_a_nested_header_mid_stream_keeps_the_frames_before_it() -> None:
    good = pff.encode_frame(
        {"quabo_num": 0, "pkt_num": 1, "pkt_tai": 2, "pkt_nsec": 3, "tv_sec": HOST, "tv_usec": 4},
        bytes(PH256.bytes_per_image),
        PH256,
    )
    bad = b'{"a": ' + b"[" * 3000 + b"\n\n*" + bytes(PH256.bytes_per_image)
    got: list[pff.PffFrame] = []
    with pytest.raises(pff.PffError) as info:
        got.extend(pff.iter_frames(good + bad, PH256))
    assert [f.header["pkt_num"] for f in got] == [1]
    assert info.value.offset == len(good)


@pytest.mark.parametrize(
    "fields",
    [
        {"pkt_tai": float("inf"), "pkt_nsec": 0, "tv_sec": HOST},
        {"pkt_tai": 0, "pkt_nsec": float("-inf"), "tv_sec": HOST},
        {"pkt_tai": 0, "pkt_nsec": 0, "tv_sec": float("nan")},
        {"pkt_tai": 0, "pkt_nsec": 0, "tv_sec": "soon"},
        {"pkt_tai": None, "pkt_nsec": 0, "tv_sec": HOST},
    ],
)
def test_non_finite_or_non_numeric_time_fields_read_as_desync(fields: dict[str, Any]) -> None:
    assert pff.header_wr_time(fields) == pff.WrTime(None, True)
    assert pff.header_wr_time({"quabo_0": fields}) == pff.WrTime(None, True)


def test_a_1e400_parsed_from_a_real_frame_reads_as_desync() -> None:
    blob = (
        b'{ "quabo_num": 3, "pkt_num": 5124, "pkt_tai": 1e400, "pkt_nsec": 999999999, '
        b'"tv_sec": 1754112728, "tv_usec": 985339}\n\n*' + bytes(PH256.bytes_per_image)
    )
    frame = pff.parse_frame(blob, PH256)
    assert frame is not None
    assert frame.header["pkt_tai"] == float("inf")
    wr = pff.header_wr_time(frame.header)
    assert wr.desync
    assert str(wr.decimal) == "0"
    assert pff.header_host_time_us(frame.header) == 1754112728_985339


GOOD = {"quabo_num": 0, "pkt_num": 1, "pkt_tai": 2, "pkt_nsec": 3, "tv_sec": HOST, "tv_usec": 4}


def test_an_integer_beyond_a_double_is_a_header_problem_naming_the_field() -> None:
    assert pff.header_problem(GOOD, PH256) is None
    assert pff.header_problem(dict(GOOD, pkt_num=10**400), PH256) == (
        "header field pkt_num is an integer too large for a double"
    )
    nested = dict(GOOD, extra={"list": [1, 2, -(10**309)]})
    assert pff.header_problem(nested, PH256) == (
        "header field extra.list[2] is an integer too large for a double"
    )
    # The largest integers a double holds are fine (precision aside).
    assert pff.header_problem(dict(GOOD, extra=2**1023), PH256) is None


def test_nesting_beyond_the_limit_is_a_header_problem() -> None:
    ok = dict(GOOD, extra={"a": [[[[[[1]]]]]]})  # depth 8 in all, counting the header itself
    assert pff.header_problem(ok, PH256) is None
    deep = dict(GOOD, extra={"a": [[[[[[[1]]]]]]]})
    assert pff.header_problem(deep, PH256) == (
        f"header nests deeper than {pff.MAX_HEADER_DEPTH} levels at extra.a[0][0][0][0][0][0]"
    )


def test_the_file_tail_keeps_the_last_frame_clients_can_decode(tmp_path: Path) -> None:
    pixels = bytes(PH256.bytes_per_image)
    path = tmp_path / "start_2024-07-25T04:34:06Z.dp_ph256.bpp_2.module_1.seqno_0.pff"
    good = pff.encode_frame(GOOD, pixels, PH256)
    hostile = pff.encode_frame(dict(GOOD, pkt_num=10**400), pixels, PH256)
    path.write_bytes(good + good)
    tail = pff.FileTail(path, PH256)
    first = tail.last_frame()
    assert first is not None
    assert first.index == 1
    with path.open("ab") as f:
        f.write(hostile)
    frame = tail.last_frame()
    assert frame is not None
    assert (frame.index, frame.header["pkt_num"]) == (1, 1)  # the hostile frame is not offered


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.text(max_size=4)
    | st.integers()
    | st.integers(min_value=2**1023, max_value=2**1100).map(lambda v: v * (-1) ** (v & 1)),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=40,
)


@given(extra=_json_values)
@settings(max_examples=300, deadline=None)
def test_an_accepted_header_always_reaches_clients_and_a_refused_one_says_why(extra: Any) -> None:
    header = dict(GOOD, extra=extra)
    problem = pff.header_problem(header, PH256)
    struct = Struct()
    if problem is None:
        struct.update(header)  # the daemon's conversion, then a client's decode
        assert Struct.FromString(struct.SerializeToString()) == struct
    elif "too large for a double" in problem:
        with pytest.raises(OverflowError):
            struct.update(header)
    else:
        assert problem.startswith(
            f"header nests deeper than {pff.MAX_HEADER_DEPTH} levels at extra"
        )
