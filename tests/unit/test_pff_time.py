"""White Rabbit → Unix time (docs/pff.md): exact to the nanosecond, desync as a value."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panoseti_appliance import pff


def test_worked_example_is_exact() -> None:
    t = pff.wr_to_unix(529, 779007488, 1721882092)
    assert not t.desync
    assert t.unix_ns == 1721882092779007488
    assert t.decimal == Decimal("1721882092.779007488")
    assert str(t.decimal) == "1721882092.779007488"


@pytest.mark.parametrize(("shift", "second"), [(0, 0), (1, -1), (1023, 1)])
def test_host_clock_within_a_second(shift: int, second: int) -> None:
    """d = 0, 1, 1023 pick the host second, the one before and the one after."""
    tv_sec = 1721882092
    tai = (tv_sec + pff.TAI_UTC_OFFSET_S - shift) % 1024
    t = pff.wr_to_unix(tai, 5, tv_sec)
    assert t == pff.WrTime((tv_sec + second) * 10**9 + 5, False)


@pytest.mark.parametrize("shift", [2, 536, 537, 1022])
def test_desync_is_a_flag_not_an_exception(shift: int) -> None:
    tv_sec = 1754112728
    tai = (tv_sec + pff.TAI_UTC_OFFSET_S - shift) % 1024
    t = pff.wr_to_unix(tai, 999_999_999, tv_sec)
    assert t.desync
    assert t.unix_ns is None
    assert t.decimal == Decimal(0)


@settings(deadline=None)
@given(
    tv_sec=st.integers(0, 2**40),
    shift=st.sampled_from([0, 1, 1023]),
    nsec=st.integers(0, 999_999_999),
)
def test_result_keeps_every_nanosecond(tv_sec: int, shift: int, nsec: int) -> None:
    tai = (tv_sec + pff.TAI_UTC_OFFSET_S - shift) % 1024
    t = pff.wr_to_unix(tai, nsec, tv_sec)
    assert t.unix_ns is not None
    assert t.unix_ns % 10**9 == nsec
    assert abs(t.unix_ns // 10**9 - tv_sec) <= 1
    assert t.decimal == Decimal(t.unix_ns) / Decimal(10**9)


def test_header_fields_come_from_the_top_level_or_quabo_0() -> None:
    flat = {"quabo_num": 0, "pkt_tai": 529, "pkt_nsec": 779007488, "tv_sec": 1721882092}
    assert pff.header_wr_time(flat).unix_ns == 1721882092779007488
    quad = {f"quabo_{i}": dict(flat, pkt_tai=529 + i) for i in range(4)}
    assert pff.header_time_fields(quad) is quad["quabo_0"]
    assert pff.header_wr_time(quad).unix_ns == 1721882092779007488
    # No quabo_0: fall back to the top level.
    assert pff.header_time_fields({"quabo_1": {}, **flat}) is not None
    assert pff.header_wr_time({"quabo_1": {}, **flat}).unix_ns == 1721882092779007488


@pytest.mark.parametrize(
    "header",
    [
        {},
        {"quabo_num": 1},
        {"pkt_tai": 1, "tv_sec": 2},
        {"pkt_tai": "x", "pkt_nsec": 1, "tv_sec": 2},
        {"pkt_tai": 1, "pkt_nsec": None, "tv_sec": 2},
        {"pkt_tai": 1, "pkt_nsec": 1, "tv_sec": float("inf")},
    ],
    ids=["empty", "no-time", "no-nsec", "string", "null", "infinite"],
)
def test_missing_or_broken_time_fields_read_as_desync(header: dict[str, object]) -> None:
    assert pff.header_wr_time(header) == pff.WrTime(None, True)


def test_host_time_in_integer_microseconds() -> None:
    header = {"pkt_tai": 1, "tv_sec": 1754112728, "tv_usec": 985339}
    assert pff.header_host_time_us(header) == 1754112728985339
    assert pff.header_host_time_us({"quabo_0": dict(header)}) == 1754112728985339
    assert pff.header_host_time_us({"pkt_tai": 1, "tv_sec": 1}) is None
    assert pff.header_host_time_us({}) is None
