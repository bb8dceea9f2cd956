#!/usr/bin/env python3
"""Hashpipe socket ingest, CPU side: µs per frame to cut a byte stream into validated frames.

    .venv/bin/python bench/bench_framer.py              # img16 and ph256, 4000 frames each
    .venv/bin/python bench/bench_framer.py --frames 20000

This is the part of UDS ingest that runs in Python for every frame Hashpipe sends:
find the frame, decode and check its JSON header (`pff.header_problem`, the rule every ingest
path shares) and slice the pixels. The stream is fed in 64 KiB chunks, as the socket reader
does. Best of 7 rounds (wall clock), because the shared development machine's speed varies by up
to 2x from minute to minute; for a figure that does not vary, count instructions instead:

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/bench_framer.py --rounds 1 --frames 2000
"""

from __future__ import annotations

import argparse
import struct
import time

from panoseti_appliance import pff
from panoseti_appliance.daqdata.server.sources.hashpipe import HashpipeFramer
from panoseti_appliance.products import BY_NAME, DataProduct

CHUNK = 65536


def header(dp: DataProduct, index: int) -> dict[str, object]:
    """A header as Hashpipe writes it: timing fields per quabo (flat with quabo_num for ph256)."""
    fields = {
        "pkt_num": index,
        "pkt_tai": index % 1024,
        "pkt_nsec": 1000 * index,
        "tv_sec": 1_754_112_728,
        "tv_usec": index % 1_000_000,
    }
    if dp.name == "ph256":
        return {"quabo_num": index % 4, **fields}
    return {f"quabo_{q}": dict(fields) for q in range(4)}


def stream(dp: DataProduct, frames: int) -> bytes:
    """`frames` socket-layout frames of 8 modules, back to back."""
    pixels = bytes(range(256)) * (dp.bytes_per_image // 256)
    out = bytearray()
    for i in range(frames):
        out += struct.pack(">H", i % 8)
        out += pff.format_header(dp, header(dp, i), "socket") + pff.HEADER_END + pixels
    return bytes(out)


def best_us_per_frame(dp: DataProduct, data: bytes, frames: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        framer = HashpipeFramer(dp)
        got = 0
        start = time.perf_counter()
        for offset in range(0, len(data), CHUNK):
            got += len(framer.feed(data[offset : offset + CHUNK]))
        best = min(best, time.perf_counter() - start)
        if got != frames:
            raise SystemExit(f"{dp.name}: framed {got} of {frames} frames: the framer is broken")
    return best / frames * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    for name in ("img16", "ph256"):
        dp = BY_NAME[name]
        us = best_us_per_frame(dp, stream(dp, args.frames), args.frames, args.rounds)
        print(f"{name}: {us:.1f} µs per frame ({1e6 / us:,.0f} frames/s on one core)")


if __name__ == "__main__":
    main()
