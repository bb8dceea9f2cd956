#!/usr/bin/env python3
"""Generate the bundled img16 sample movie of module 254 (deterministic, fixed seed).

The package ships one real pulse-height recording but no movie, and the simulator needs both.
This script synthesises a short movie that looks like a PANOSETI module watching the sky: a
moonlit background with a gentle gradient, per-pixel and per-quabo gain differences, one hot
pixel, a few stars drifting slowly across the field and twinkling, and two transient flashes (an
elongated Cherenkov-like streak and a short point flash), all with Poisson noise. Headers use the
file writer's 4-quabo layout with White Rabbit time synchronised to the host time, 100 ms apart.

Noise comes from numpy's legacy RandomState, whose streams numpy keeps stable across versions,
so running this again gives byte-identical output (a test checks this).

    .venv/bin/python tools/make_sample_movie.py            # rewrite the bundled file
    .venv/bin/python tools/make_sample_movie.py --out DIR  # write it elsewhere
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from panoseti_appliance import pff
from panoseti_appliance.products import IMG16

SEED = 20250802
MODULE_ID = 254
FRAMES = 64
#: Same start as the bundled ph256 recording of module 254.
START = "2025-08-02T05:31:36Z"
START_UNIX_NS = 1754112696_000_000_000
FRAME_PERIOD_NS = 100_000_000
#: The host receives a quabo's packet this long after its White Rabbit time stamp.
HOST_LATENCY_NS = 412_000
FIRST_PKT_NUM = 20_000
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "panoseti_appliance" / "data" / "sample"

#: (row, col, counts per frame) at frame 0; stars drift with the sky.
STARS = ((6.0, 3.0, 2600.0), (12.5, 20.0, 900.0), (25.0, 9.5, 4200.0), (19.0, 28.0, 450.0))
DRIFT_PER_FRAME = (0.035, 0.11)  # rows, cols
PSF_SIGMA = 0.85
#: (first frame, frames, row, col, peak counts, length px, width px, angle rad)
FLASHES = ((22, 1, 14.0, 12.0, 5200.0, 3.2, 0.9, 0.6), (47, 2, 8.0, 25.0, 3800.0, 1.0, 1.0, 0.0))


def file_name() -> str:
    return pff.make_data_file_name(START, IMG16, MODULE_ID, 0)


def _blob(
    rows: np.ndarray,
    cols: np.ndarray,
    r0: float,
    c0: float,
    length: float,
    width: float,
    ang: float,
) -> np.ndarray:
    """A unit-peak elliptical Gaussian (a star when length == width == PSF)."""
    dr, dc = rows - r0, cols - c0
    along = dc * np.cos(ang) + dr * np.sin(ang)
    across = -dc * np.sin(ang) + dr * np.cos(ang)
    return np.exp(-0.5 * ((along / length) ** 2 + (across / width) ** 2))


def expected_counts(rng: np.random.RandomState) -> np.ndarray:
    """Mean counts of every frame, shape (FRAMES, 32, 32), before Poisson noise."""
    rows, cols = np.mgrid[0 : IMG16.rows, 0 : IMG16.cols].astype(np.float64)
    sky = 180.0 + 2.2 * rows + 0.8 * cols
    gain = 1.0 + 0.04 * rng.standard_normal((IMG16.rows, IMG16.cols))
    half = IMG16.rows // 2
    for (qr, qc), g in zip(((0, 0), (0, 1), (1, 0), (1, 1)), (1.0, 0.93, 1.06, 0.97), strict=True):
        gain[qr * half : (qr + 1) * half, qc * half : (qc + 1) * half] *= g
    twinkle = 1.0 + 0.12 * rng.standard_normal((FRAMES, len(STARS)))
    movie = np.empty((FRAMES, IMG16.rows, IMG16.cols))
    for k in range(FRAMES):
        light = sky.copy()
        for s, (r, c, flux) in enumerate(STARS):
            peak = flux * twinkle[k, s] / (2 * np.pi * PSF_SIGMA**2)
            r_k, c_k = r + DRIFT_PER_FRAME[0] * k, (c + DRIFT_PER_FRAME[1] * k) % IMG16.cols
            light += peak * _blob(rows, cols, r_k, c_k, PSF_SIGMA, PSF_SIGMA, 0.0)
        for first, lasting, r, c, peak, length, width, ang in FLASHES:
            if first <= k < first + lasting:
                light += peak * 0.45 ** (k - first) * _blob(rows, cols, r, c, length, width, ang)
        movie[k] = light * gain
    movie[:, 27, 4] += 1500.0  # a hot pixel
    return movie


def header(k: int) -> dict[str, dict[str, int]]:
    """The file writer's 4-quabo header of frame k: WR time synchronised to host time."""
    out = {}
    for q in range(4):
        wr_ns = START_UNIX_NS + k * FRAME_PERIOD_NS + 1_000 * q
        host_ns = wr_ns + HOST_LATENCY_NS + 3_000 * q
        wr_sec, nsec = divmod(wr_ns, 1_000_000_000)
        tv_sec, host_rest = divmod(host_ns, 1_000_000_000)
        out[f"quabo_{q}"] = {
            "pkt_num": FIRST_PKT_NUM + 100 * k + q,
            "pkt_tai": (wr_sec + pff.TAI_UTC_OFFSET_S) % 1024,
            "pkt_nsec": nsec,
            "tv_sec": tv_sec,
            "tv_usec": host_rest // 1000,
        }
    return out


def build_movie() -> bytes:
    """The whole file's bytes."""
    rng = np.random.RandomState(SEED)
    mean = expected_counts(rng)
    counts = np.clip(rng.poisson(mean), 0, IMG16.max_wire_value).astype("<u2")
    return b"".join(
        pff.encode_frame(header(k), counts[k], IMG16, layout="file") for k in range(FRAMES)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="output directory")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / file_name()
    path.write_bytes(build_movie())
    print(f"wrote {path} ({path.stat().st_size} bytes, {FRAMES} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
