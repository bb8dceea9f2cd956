"""`panoseti pff info|show` as astronomers run it: the real console script on real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from tests.unit.test_pff_realfile import FRAME_SIZE, REAL_FILE, RawFrames, read_raw

PANOSETI = str(Path(sys.executable).parent / "panoseti")


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PANOSETI, "pff", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=90,
    )


@pytest.fixture(scope="module")
def raw() -> RawFrames:
    return read_raw()


def host_text(header: dict[str, Any]) -> str:
    return f"{header['tv_sec']}.{header['tv_usec']:06d}"


def test_info_json_equals_the_independent_decoding(raw: RawFrames) -> None:
    result = run("info", REAL_FILE, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["data_product"] == "ph256"
    assert info["module"] == 254
    assert info["frames"] == len(raw.headers) == 88
    assert info["frame_size"] == FRAME_SIZE
    assert info["uniform_frame_size"] is True
    assert info["trailing_bytes"] == 0
    assert info["wr_desync_frames"] == 88
    assert info["first"]["wr"] == info["last"]["wr"] == "desync"
    assert info["first"]["host"] == host_text(raw.headers[0]) == "1754112728.985339"
    assert info["last"]["host"] == host_text(raw.headers[-1]) == "1754113358.091225"
    assert info["first"]["host_utc"].startswith("2025-08-02 05:32:08.985339")
    assert info["last"]["host_utc"].startswith("2025-08-02 05:42:38.091225")
    assert info["pixel_min"] == int(raw.images.min()) == -575
    assert info["pixel_max"] == int(raw.images.max()) == 3343
    expected_mean = int(raw.images.sum(dtype=np.int64)) / raw.images.size
    assert info["pixel_mean"] == pytest.approx(expected_mean, rel=1e-12)


def test_info_text_of_a_growing_file_reports_its_partial_tail(
    tmp_path: Path, raw: RawFrames
) -> None:
    copy = tmp_path / REAL_FILE.name
    copy.write_bytes(REAL_FILE.read_bytes()[: 10 * FRAME_SIZE + 200])
    result = run("info", copy)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    first_ten = raw.images[:10]
    assert "ph256" in text
    assert "254" in text
    assert "636 B" in text
    assert "200 B" in text
    assert "10 of 10 frames desync" in text
    assert f"min {int(first_ten.min())}, max {int(first_ten.max())}" in text
    assert host_text(raw.headers[9]) in text


def test_show_writes_a_real_png(tmp_path: Path) -> None:
    out = tmp_path / "plots" / "last.png"
    result = run("show", REAL_FILE, "--frame", "-1", "--png", out)
    assert result.returncode == 0, result.stderr
    assert out.is_file()
    assert str(out) in result.stdout
    assert out.stat().st_size > 5 * 1024
    image = imread(out)
    assert image.ndim == 3
    assert float(image[..., :3].var()) > 0


def test_a_missing_file_fails_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / REAL_FILE.name
    result = run("show", missing, "--png", tmp_path / "x.png")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(missing) in lines[0]
    assert "no such file" in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_a_frame_out_of_range_fails_with_the_valid_range(tmp_path: Path) -> None:
    result = run("show", REAL_FILE, "--frame", "88", "--png", tmp_path / "x.png")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "88" in result.stderr
    assert "0..87" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_a_malformed_file_fails_with_the_pff_error(tmp_path: Path) -> None:
    bad = tmp_path / REAL_FILE.name
    data = REAL_FILE.read_bytes()
    bad.write_bytes(data[: 3 * FRAME_SIZE + 121] + b"\n\nX" + data[3 * FRAME_SIZE + 124 :])
    result = run("info", bad)
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(bad) in lines[0]
    assert f"offset {3 * FRAME_SIZE + 123}" in lines[0]
    assert "missing '*'" in lines[0]


def test_a_file_name_without_a_data_product_is_explained(tmp_path: Path) -> None:
    anonymous = tmp_path / "recording.pff"
    shutil.copyfile(REAL_FILE, anonymous)
    result = run("info", anonymous)
    assert result.returncode == 1
    assert "dp_" in result.stderr
    assert "Traceback" not in result.stderr
