"""What a screenshot of a plot window shows: its image panels, colour bars and axes.

Image panels and colour bars are found as the rectangles of pixels drawn in the `plasma` colour
map (the previewer's), separated by recursive XY cuts: the previewer lays its panels out on a grid
with blank gaps between them, so this is enough and needs no image-processing library. An image
panel is about square; a colour bar is tall and thin. Axes of line plots are counted by their
horizontal spines, the only long dark lines in such a window, and their lines by hue.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from matplotlib import colormaps
from matplotlib.colors import rgb_to_hsv

#: Colour cube cells of 8 levels per channel; plasma's colours and their neighbours are "plasma".
_CELL = 8
MIN_PANEL_SIDE = 40
MIN_BAR_LENGTH = 40


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True)
class Panels:
    images: list[Box]
    colour_bars: list[Box]


def _plasma_cells() -> np.ndarray:
    levels = 256 // _CELL
    cells = np.zeros((levels, levels, levels), dtype=bool)
    lut = np.round(colormaps["plasma"](np.linspace(0, 1, 256))[:, :3] * 255).astype(int) // _CELL
    for step in itertools.product((-1, 0, 1), repeat=3):
        near = np.clip(lut + np.array(step), 0, levels - 1)
        cells[near[:, 0], near[:, 1], near[:, 2]] = True
    return cells


def plasma_mask(rgb: np.ndarray) -> np.ndarray:
    """True where a pixel has a colour of the plasma colour map."""
    cells = _plasma_cells()
    q = rgb.astype(int) // _CELL
    return np.asarray(cells[q[..., 0], q[..., 1], q[..., 2]])


def _runs(flags: npt.ArrayLike) -> list[tuple[int, int]]:
    """[start, stop) of every run of True."""
    padded = np.concatenate(([False], flags, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def boxes(mask: np.ndarray, min_side: int = 3) -> list[Box]:
    """Bounding boxes of the blocks of `mask` that blank rows and columns separate."""
    found: list[Box] = []
    pending = [(0, mask.shape[0], 0, mask.shape[1])]
    while pending:
        top, bottom, left, right = pending.pop()
        block = mask[top:bottom, left:right]
        rows, cols = _runs(block.any(axis=1)), _runs(block.any(axis=0))
        if len(rows) == 1 and len(cols) == 1:
            (r0, r1), (c0, c1) = rows[0], cols[0]
            if min(r1 - r0, c1 - c0) >= min_side:
                found.append(Box(left + c0, top + r0, c1 - c0, r1 - r0))
            continue
        pending += [
            (top + r0, top + r1, left + c0, left + c1) for r0, r1 in rows for c0, c1 in cols
        ]
    return sorted(found, key=lambda b: (b.top, b.left))


def panels(rgb: np.ndarray) -> Panels:
    """The plasma image panels (about square) and colour bars (tall, thin) on the screen."""
    found = boxes(plasma_mask(rgb))
    images = [
        b
        for b in found
        if min(b.width, b.height) >= MIN_PANEL_SIDE and 0.7 <= b.width / b.height <= 1.4
    ]
    bars = [b for b in found if b.height >= MIN_BAR_LENGTH and b.height >= 5 * b.width]
    return Panels(images, bars)


def window_box(rgb: np.ndarray) -> Box | None:
    """Where the window is: the bounding box of everything that is not the black root window."""
    drawn = np.asarray(rgb.any(axis=2))
    if not drawn.any():
        return None
    rows, cols = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
    return Box(int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))


def horizontal_rules(rgb: np.ndarray, min_fraction: float = 0.4) -> int:
    """Dark horizontal lines at least `min_fraction` of the window wide (adjacent rows: one)."""
    box = window_box(rgb)
    if box is None:
        return 0
    window = rgb[box.top : box.top + box.height, box.left : box.left + box.width]
    dark = window.max(axis=2) < 100
    longest = np.array([max((b - a for a, b in _runs(row)), default=0) for row in dark])
    return len(_runs(longest >= min_fraction * box.width))


def line_hues(rgb: np.ndarray, min_pixels: int = 200) -> list[int]:
    """The hues (in 30-degree sectors) that at least `min_pixels` strongly coloured pixels have."""
    coloured = rgb[np.ptp(rgb.astype(int), axis=2) > 80]
    if not len(coloured):
        return []
    sectors = np.round(rgb_to_hsv(coloured / 255.0)[:, 0] * 12).astype(int) % 12
    counts = np.bincount(sectors, minlength=12)
    return [int(s) * 30 for s in np.flatnonzero(counts >= min_pixels)]


def distinct_colours(rgb: np.ndarray) -> int:
    return len(np.unique(rgb.reshape(-1, 3), axis=0))
