#!/usr/bin/env python3
"""Client-side parsing cost: µs per StreamImagesResponse → parsed image dict (docs/clients.md).

    .venv/bin/python bench/bench_parse.py            # ph256 (real recording) and img16 (sample)
    .venv/bin/python bench/bench_parse.py --repeat 20000

Each image is serialised once and parsed from bytes in the loop, as a client receives it, so the
figure includes protobuf deserialisation. Medians of 5 rounds, wall clock and CPU time. The original client took about 335 µs per image.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from panoseti_appliance import pff, sample_data
from panoseti_appliance._proto import daq_data_pb2
from panoseti_appliance.daqdata.client.parse import parse_response
from panoseti_appliance.daqdata.sim.upload import pano_image

ORIGINAL_US_PER_IMAGE = 335.0


def wire_images(path: Path, module_id: int) -> list[bytes]:
    """Every frame of a PFF file as a serialised StreamImagesResponse."""
    out = []
    for frame in pff.iter_frames(path):
        image = pano_image(module_id, frame.dp, frame.header, frame.pixels, frame.index)
        out.append(daq_data_pb2.StreamImagesResponse(pano_image=image).SerializeToString())
    return out


def us_per_image(wire: list[bytes], repeat: int, rounds: int = 5) -> tuple[float, float]:
    """Median µs per parsed image over `rounds` rounds: (wall clock, this thread's CPU time).

    CPU time excludes time the process spent descheduled, so it stays meaningful on a busy box.
    """
    from_string = daq_data_pb2.StreamImagesResponse.FromString
    wall, cpu = [], []
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.thread_time()
        for i in range(repeat):
            parse_response(from_string(wire[i % len(wire)]))
        wall.append((time.perf_counter() - start) / repeat * 1e6)
        cpu.append((time.thread_time() - start_cpu) / repeat * 1e6)
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5000, help="parses per round")
    args = parser.parse_args()
    files = sample_data.sample_files()
    print(f"{'dp':8} {'wall µs':>8} {'CPU µs':>7} {'original 335 µs / CPU':>22}")
    for dp_name in ("ph256", "img16"):
        wire = wire_images(files[dp_name], module_id=254)
        wall, cpu = us_per_image(wire, args.repeat)
        print(f"{dp_name:8} {wall:8.1f} {cpu:7.1f} {ORIGINAL_US_PER_IMAGE / cpu:21.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
