"""The two clocks in a frame header: White Rabbit time and the DAQ host's receive time.

A header carries only the low 10 bits of the White Rabbit TAI seconds (`pkt_tai`), so the full
time must be rebuilt against the host's clock (`tv_sec`), and a frame whose two clocks disagree
must be reported as desynchronised rather than given a wrong time (docs/pff.md, "Two clocks:
host time and White Rabbit time"). Times are exact integers (ns or µs): a float near 1.7e9 s
cannot hold them.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: TAI - UTC, fixed (docs/pff.md, "Two clocks: host time and White Rabbit time").
TAI_UTC_OFFSET_S = 37
_NS = 10**9


@dataclass(frozen=True, slots=True)
class WrTime:
    """White Rabbit time of a frame: exact integer ns, or desync (no WR time)."""

    unix_ns: int | None
    desync: bool

    @property
    def decimal(self) -> decimal.Decimal:
        """Seconds as an exact Decimal; Decimal(0) on desync (client compatibility)."""
        if self.unix_ns is None:
            return decimal.Decimal(0)
        return decimal.Decimal(self.unix_ns).scaleb(-9)


def header_time_fields(header: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The dict holding pkt_tai/pkt_nsec/tv_sec/tv_usec: top level (ph256) or quabo_0 (4-quabo)."""
    q0 = header.get("quabo_0")
    if isinstance(q0, Mapping) and "pkt_tai" in q0:
        return q0
    if "pkt_tai" in header or "tv_sec" in header:
        return header
    return None


def wr_to_unix(pkt_tai: int, pkt_nsec: int, tv_sec: int) -> WrTime:
    """White Rabbit to Unix time, exact to the nanosecond, with desync detection (docs/pff.md)."""
    tai = int(pkt_tai)
    nsec = int(pkt_nsec)
    host = int(tv_sec)
    d = (host - tai + TAI_UTC_OFFSET_S) % 1024
    if d == 0:
        sec = host
    elif d == 1:
        sec = host - 1
    elif d == 1023:
        sec = host + 1
    else:
        return WrTime(None, True)
    return WrTime(sec * _NS + nsec, False)


def header_wr_time(header: Mapping[str, Any]) -> WrTime:
    """wr_to_unix on a frame header's timing fields; desync when they are missing."""
    fields = header_time_fields(header)
    if fields is None:
        return WrTime(None, True)
    try:
        return wr_to_unix(fields["pkt_tai"], fields["pkt_nsec"], fields["tv_sec"])
    except (KeyError, TypeError, ValueError, OverflowError):
        # OverflowError: JSON allows 1e400, which parses to an infinite float.
        return WrTime(None, True)


def header_host_time_us(header: Mapping[str, Any]) -> int | None:
    """The DAQ host's receive time (`tv_sec`, `tv_usec`) as integer microseconds; None if absent.

    Integer so that callers keep every microsecond (a float near 1.7e9 s keeps only ~0.24 µs).
    """
    fields = header_time_fields(header)
    if fields is None:
        return None
    sec, usec = fields.get("tv_sec"), fields.get("tv_usec")
    if not isinstance(sec, int) or not isinstance(usec, int):
        return None
    return sec * 1_000_000 + usec
