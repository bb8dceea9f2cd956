#!/usr/bin/env python3
"""Client-side parsing cost: µs per StreamImagesResponse → parsed image dict (docs/clients.md).

    .venv/bin/python bench/bench_parse.py            # ph256 (real recording) and img16 (sample)
    .venv/bin/python bench/bench_parse.py --repeat 20000

Each image is serialised once and parsed from bytes in the loop, as a client receives it, so the
figure includes protobuf deserialisation. Medians of 5 rounds, wall clock and CPU time, for every
pixel encoding (PACKED, RAW, BLOSC_LZ4, BLOSC_ZSTD), with the response's size on the wire and
the pixel decode alone (`image_array` on an already deserialised PanoImage, the part the
encoding changes). The original client took
about 335 µs per image.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from panoseti_appliance import pff, sample_data
from panoseti_appliance._proto import daq_data_pb2
from panoseti_appliance.daqdata.client.encoding import ENCODING_NAMES, Encoding
from panoseti_appliance.daqdata.client.parse import image_array, parse_response
from panoseti_appliance.daqdata.sim.upload import pano_image

ORIGINAL_US_PER_IMAGE = 335.0
T = TypeVar("T")


def wire_images(path: Path, module_id: int, encoding: Encoding) -> list[bytes]:
    """Every frame of a PFF file as a serialised StreamImagesResponse in `encoding`."""
    out = []
    for frame in pff.iter_frames(path):
        image = pano_image(module_id, frame.dp, frame.header, frame.pixels, frame.index, encoding)
        out.append(daq_data_pb2.StreamImagesResponse(pano_image=image).SerializeToString())
    return out


def us_per_image(
    items: Sequence[T], repeat: int, step: Callable[[T], object], rounds: int = 5
) -> tuple[float, float]:
    """Median µs of `step` per item over `rounds` rounds: (wall clock, this thread's CPU time).

    CPU time excludes time the process spent descheduled, so it stays meaningful on a busy box.
    """
    wall, cpu = [], []
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.thread_time()
        for i in range(repeat):
            step(items[i % len(items)])
        wall.append((time.perf_counter() - start) / repeat * 1e6)
        cpu.append((time.thread_time() - start_cpu) / repeat * 1e6)
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5000, help="parses per round")
    args = parser.parse_args()
    files = sample_data.sample_files()
    from_string = daq_data_pb2.StreamImagesResponse.FromString

    def parse(data: bytes) -> object:
        return parse_response(from_string(data))

    print(
        f"{'dp':6} {'encoding':8} {'bytes':>6} {'wall µs':>8} {'CPU µs':>7} "
        f"{'original 335 µs / CPU':>22} {'decode CPU µs':>14}"
    )
    for dp_name in ("ph256", "img16"):
        for name, encoding in ENCODING_NAMES.items():
            wire = wire_images(files[dp_name], 254, encoding)
            size = statistics.median(len(w) for w in wire)
            wall, cpu = us_per_image(wire, args.repeat, parse)
            images = [from_string(w).pano_image for w in wire]
            _, decode_cpu = us_per_image(images, args.repeat, image_array)
            print(
                f"{dp_name:6} {name:8} {size:6.0f} {wall:8.1f} {cpu:7.1f} "
                f"{ORIGINAL_US_PER_IMAGE / cpu:21.1f}x {decode_cpu:14.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
