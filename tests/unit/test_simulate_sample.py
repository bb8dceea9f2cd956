"""The bundled sample run: the generated img16 movie is reproducible and replays as-is."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

from panoseti_appliance import pff
from panoseti_appliance.daqdata.sim.frames import load_frames
from panoseti_appliance.products import IMG16
from panoseti_appliance.sample_data import SAMPLE_DIR, sample_files

TOOL = Path(__file__).resolve().parents[2] / "tools" / "make_sample_movie.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample_movie", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerating_the_movie_gives_identical_bytes(tmp_path: Path) -> None:
    tool = generator()
    assert tool.main(["--out", str(tmp_path)]) == 0
    (made,) = tmp_path.iterdir()
    bundled = Path(SAMPLE_DIR) / made.name
    assert made.read_bytes() == bundled.read_bytes()


def test_the_sample_run_has_a_movie_and_pulse_heights_of_module_254() -> None:
    files = sample_files()
    assert {"img16", "ph256"} <= set(files)
    for dp, path in files.items():
        named = pff.parse_data_file_name(path.name)
        assert named is not None
        assert (named.dp, named.module) == (dp, 254)


def test_movie_frames_are_synchronised_and_look_like_sky() -> None:
    frames = load_frames(sample_files()["img16"], IMG16, "movie")
    assert len(frames) == 64
    times = []
    for frame in frames:
        wr = pff.header_wr_time(frame.header)
        assert not wr.desync
        assert wr.unix_ns is not None
        times.append(wr.unix_ns)
    assert np.all(np.diff(times) == 100_000_000), "frames are 100 ms apart"
    movie = np.stack([np.frombuffer(f.pixels, "<u2").reshape(32, 32) for f in frames])
    background = np.median(movie)
    assert 150 < background < 400
    # Stars stand out in every frame, and the flash frame is the brightest of all.
    assert np.all(movie.max(axis=(1, 2)) > 3 * background)
    assert int(np.argmax(movie.max(axis=(1, 2)))) == 22
    # Poisson noise: consecutive frames differ everywhere, not just where stars move.
    assert np.mean(movie[1] != movie[0]) > 0.8
