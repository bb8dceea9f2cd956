"""PanoImagePreviewer and PulseHeightDistribution rendered headless to PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from panoseti_appliance import pff
from panoseti_appliance.daqdata.client.parse import ParsedImage, parse_pano_image
from panoseti_appliance.daqdata.client.plot import (
    ColourScale,
    PanoImagePreviewer,
    PulseHeightDistribution,
)
from panoseti_appliance.daqdata.sim.upload import pano_image
from panoseti_appliance.products import IMG16, PH256, PH1024, DataProduct

PH_FILE = (
    Path(__file__).parents[1]
    / "data"
    / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"
)
MIN_PNG_BYTES = 20_000


def assert_png_looks_live(path: Path, min_bytes: int = MIN_PNG_BYTES) -> None:
    """A rendered plot, not a blank canvas: big enough, many colours, varied pixels."""
    assert path.is_file(), f"{path} was not written"
    assert path.stat().st_size >= min_bytes, f"{path} is only {path.stat().st_size} bytes"
    rgb = imread(path)[..., :3]
    assert rgb.shape[0] >= 400
    assert rgb.shape[1] >= 400
    colours = np.unique((rgb * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 100, f"{path} has only {len(colours)} colours"
    assert float(rgb.std()) > 0.05


def parsed(
    dp: DataProduct, module: int, header: dict[str, Any], pixels: bytes, n: int
) -> ParsedImage:
    return parse_pano_image(pano_image(module, dp, header, pixels, n))


@pytest.fixture(scope="module")
def ph_images() -> list[dict[str, Any]]:
    # Named as the filesystem source names them: the data file the frame came from.
    return [
        {**parsed(PH256, 254, f.header, f.pixels, f.index), "file": PH_FILE.name}
        for f in pff.iter_frames(PH_FILE)
    ]


def movie(module: int, n: int, level: int = 40) -> dict[str, Any]:
    rng = np.random.default_rng(n)
    yy, xx = np.mgrid[0:32, 0:32]
    star = 400 * np.exp(-((yy - 10) ** 2 + (xx - 8 - n % 16) ** 2) / 3.0)
    pixels = (rng.poisson(level, (32, 32)) + star).astype("<u2")
    timing = {"pkt_num": n, "pkt_tai": 229, "pkt_nsec": 5, "tv_sec": 1754112728 + n, "tv_usec": 0}
    header = {f"quabo_{q}": timing for q in range(4)}
    return parsed(IMG16, module, header, pixels.tobytes(), n)


def test_previewer_renders_one_row_per_module(
    tmp_path: Path, ph_images: list[dict[str, Any]]
) -> None:
    previewer = PanoImagePreviewer(plot_update_interval=3600)
    for n, ph in enumerate(ph_images[:40]):
        for module in (254, 1):
            previewer.update({**ph, "module_id": module})
            previewer.update(movie(module, n))
    out = previewer.save_png(tmp_path / "preview.png")
    assert_png_looks_live(out)
    images = [ax for ax in previewer.figure.axes if ax.images]
    assert len(images) == 4
    titles = [ax.get_title(loc="left") for ax in images]
    assert sum(t.startswith("PULSE_HEIGHT: Q") for t in titles) == 2
    assert sum(t.startswith("MOVIE") for t in titles) == 2
    assert all("frame_no = " in t and "unix_t = 2025-08-02" in t for t in titles)
    suptitle = previewer.figure.get_suptitle()
    assert "module_ids={1, 254} [all]" in suptitle
    assert "Obs data from 2025-08-02T05_31_36Z" in suptitle
    assert [ax.get_ylabel() for ax in images] == [
        "module 1",
        "module 1",
        "module 254",
        "module 254",
    ]


def test_previewer_whitelist_and_ph1024_canvas(tmp_path: Path) -> None:
    previewer = PanoImagePreviewer(stream_movie_data=False, module_id_whitelist=[3])
    big = (np.arange(1024) % 300).astype("<i2").tobytes()
    timing = {"pkt_num": 0, "pkt_tai": 1, "pkt_nsec": 0, "tv_sec": 1, "tv_usec": 0}
    header = {f"quabo_{q}": timing for q in range(4)}
    assert not previewer.update(movie(3, 0))  # movie not streamed
    assert not previewer.update(parsed(PH1024, 4, header, big, 0))  # module not whitelisted
    previewer.update(parsed(PH1024, 3, header, big, 0))
    previewer.save_png(tmp_path / "p.png")
    (ax,) = [ax for ax in previewer.figure.axes if ax.images]
    shown = ax.images[0].get_array()
    assert shown is not None
    assert shown.shape == (32, 32)
    assert "module_ids={3} [filtered]" in previewer.figure.get_suptitle()


def test_previewer_needs_a_stream() -> None:
    with pytest.raises(ValueError, match="stream_movie_data or stream_pulse_height_data"):
        PanoImagePreviewer(stream_movie_data=False, stream_pulse_height_data=False)


def test_colour_scale_percentiles_per_type(ph_images: list[dict[str, Any]]) -> None:
    scale = ColourScale(window=10)
    assert scale.limits() == (0.0, 1.0)
    flat = np.full((4, 4), 7)
    scale.add(flat)
    assert scale.limits() == (7.0, 8.0)
    for value in range(20):
        scale.add(np.array([[value, 100 + value]]))
    # Only the last 10 images count: maxima 110..119, minima 10..19.
    assert scale.limits() == pytest.approx((10.45, 118.55))

    previewer = PanoImagePreviewer(plot_update_interval=3600)
    for ph in ph_images[:10]:
        previewer.update(ph)
    previewer.update(movie(254, 0, level=5000))
    ph_vmax = previewer.scales["PULSE_HEIGHT"].limits()[1]
    assert ph_vmax < 4000 < previewer.scales["MOVIE"].limits()[0]


def test_ph_distribution_tumbling_windows(tmp_path: Path, ph_images: list[dict[str, Any]]) -> None:
    dist = PulseHeightDistribution((10, 60), plot_update_interval=3600)
    t0 = dist.windows[0].started
    assert not dist.update(movie(1, 0), now=t0)
    for i, ph in enumerate(ph_images):
        dist.update({**ph, "module_id": 1 + i % 2}, now=t0 + i * 0.1)  # 0 .. 8.7 s
    short, long = dist.windows
    assert sorted(short.maxima) == [1, 2]
    assert len(short.maxima[1]) + len(short.maxima[2]) == 88
    assert max(short.maxima[1] + short.maxima[2]) == 3343
    assert short.refreshed == "Never"
    dist.update(ph_images[0], now=t0 + 12)  # past 10 s: the short window starts again
    assert short.maxima == {254: [int(ph_images[0]["image_array"].max())]}
    assert short.refreshed != "Never"
    assert sum(len(v) for v in long.maxima.values()) == 89
    out = dist.save_png(tmp_path / "phdist.png")
    assert_png_looks_live(out)
    titles = [ax.get_title() for ax in dist.figure.axes]
    assert titles[0].startswith("Refresh interval = 10s | Last refresh = 20")
    assert titles[1] == "Refresh interval = 60s | Last refresh = Never"
    assert dist.figure.get_suptitle() == "Distribution of Max Pulse-Heights"
    legend = dist.figure.axes[1].get_legend()
    assert legend is not None
    assert legend.get_title().get_text() == "Module"


def test_ph_distribution_filters_modules_and_validates_durations(
    ph_images: list[dict[str, Any]],
) -> None:
    dist = PulseHeightDistribution((5,), module_ids=[7])
    dist.update(ph_images[0])
    assert dist.windows[0].maxima == {}
    with pytest.raises(ValueError, match="durations_seconds must be positive"):
        PulseHeightDistribution((0, 10))


def test_redraws_are_rate_limited(ph_images: list[dict[str, Any]]) -> None:
    dist = PulseHeightDistribution((10,), plot_update_interval=5.0)
    t0 = dist.windows[0].started
    assert dist.update(ph_images[0], now=t0)
    assert not dist.update(ph_images[1], now=t0 + 1)
    assert dist.update(ph_images[2], now=t0 + 6)
