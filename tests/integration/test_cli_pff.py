"""`panoseti pff info|show` run as the real console script, on real and broken files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from panoseti_appliance import pff
from panoseti_appliance.products import IMG16

PANOSETI = Path(sys.executable).parent / "panoseti"
REAL = (
    Path(__file__).parents[1]
    / "data"
    / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"
)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PANOSETI), "pff", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_info_json_on_the_real_file() -> None:
    proc = run("info", REAL, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info == {
        "file": str(REAL),
        "data_product": "ph256",
        "module": 254,
        "frames": 88,
        "frame_size": 636,
        "uniform_frame_size": True,
        "trailing_bytes": 0,
        "wr_desync_frames": 88,
        "first": {
            "wr": "desync",
            "host": "1754112728.985339",
            "host_utc": "2025-08-02 05:32:08.985339 UTC",
        },
        "last": {
            "wr": "desync",
            "host": "1754113358.091225",
            "host_utc": "2025-08-02 05:42:38.091225 UTC",
        },
        "pixel_min": -575,
        "pixel_max": 3343,
        "pixel_mean": pytest.approx(_raw_mean(), abs=1e-9),
    }


def _raw_mean() -> float:
    """Mean pixel of the real file, decoded here with plain numpy at the documented stride."""
    frames = np.frombuffer(REAL.read_bytes(), np.uint8).reshape(-1, 636)
    return float(frames[:, 124:].copy().view("<i2").astype(np.int64).mean())


def test_info_text_on_the_real_file() -> None:
    proc = run("info", REAL)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(":", 1) for line in proc.stdout.splitlines() if ":" in line)
    assert lines["data product"].strip() == "ph256"
    assert lines["module"].strip() == "254"
    assert lines["frames"].strip() == "88"
    assert lines["frame size"].strip() == "636 B"
    assert lines["WR time"].strip().startswith("desync → desync")
    assert "1754112728.985339 → 1754113358.091225" in proc.stdout
    assert "min -575, max 3343" in lines["pixels"]


def test_info_reports_a_wr_time_and_a_partial_tail(tmp_path: Path) -> None:
    synced = {"pkt_num": 1, "pkt_tai": 529, "pkt_nsec": 779007488, "tv_sec": 1721882092}
    header = {key: dict(synced, tv_usec=5) for key in pff.QUABO_KEYS}
    image = np.arange(1024, dtype=np.uint16).reshape(32, 32)
    frame = pff.encode_frame(header, image, IMG16)
    path = tmp_path / pff.make_data_file_name("2024-07-25T04:34:06Z", IMG16, 3)
    path.write_bytes(frame * 2 + frame[:100])
    proc = run("info", path, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["first"]["wr"] == info["last"]["wr"] == "1721882092.779007488"
    assert (info["frames"], info["frame_size"], info["trailing_bytes"]) == (2, 2540, 100)
    assert (info["module"], info["wr_desync_frames"]) == (3, 0)
    assert (info["pixel_min"], info["pixel_max"], info["pixel_mean"]) == (0, 1023, 511.5)
    text = run("info", path).stdout
    assert "partial tail: 100 B" in text


def test_show_writes_a_real_png(tmp_path: Path) -> None:
    out = tmp_path / "png" / "frame5.png"
    proc = run("show", REAL, "--frame", "5", "--png", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wrote {out}"
    assert out.stat().st_size > 10_000
    pixels = mpimg.imread(out)
    assert pixels.ndim == 3
    assert pixels.shape[0] > 300
    assert pixels.shape[1] > 300
    assert float(pixels[..., :3].var()) > 0.01  # not blank


def test_show_last_frame_counting_from_the_end(tmp_path: Path) -> None:
    last = tmp_path / "last.png"
    first = tmp_path / "first.png"
    assert run("show", REAL, "--frame", "-1", "--png", last).returncode == 0
    assert run("show", REAL, "--png", first).returncode == 0
    assert mpimg.imread(last).shape == mpimg.imread(first).shape
    assert not np.array_equal(mpimg.imread(last), mpimg.imread(first))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("info", "{tmp}/missing.pff"), "missing.pff: no such file"),
        (("info", "{tmp}"), "not a regular file"),
        (("show", str(REAL), "--frame", "88", "--png", "{tmp}/x.png"), "no frame 88; valid: 0..87"),
        (("show", str(REAL), "--frame", "-89", "--png", "{tmp}/x.png"), "no frame -89"),
        (("info", "{broken}"), "at offset 759: missing '*' image marker"),
        (("show", "{broken}", "--png", "{tmp}/x.png"), "missing '*' image marker"),
        (("info", "{tmp}/frames.pff"), "no dp_<product> piece"),
        (("info", "{tmp}/sim.dp_img12.module_1.seqno_0.pff"), "Unknown data product 'img12'"),
    ],
    ids=[
        "missing",
        "directory",
        "frame-too-big",
        "frame-too-negative",
        "malformed-info",
        "malformed-show",
        "no-product",
        "unknown-product",
    ],
)
def test_clear_one_line_errors(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    data = REAL.read_bytes()[:636]
    broken = tmp_path / "sim.dp_ph256.module_1.seqno_0.pff"
    broken.write_bytes(data + data[:121] + b"\n\n#" + bytes(512))
    (tmp_path / "frames.pff").write_bytes(data)
    (tmp_path / "sim.dp_img12.module_1.seqno_0.pff").write_bytes(data)
    proc = run(*(a.format(tmp=tmp_path, broken=broken) for a in args))
    assert proc.returncode == 1
    assert proc.stdout == ""
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("panoseti pff: ")
    assert message in err
    assert not (tmp_path / "x.png").exists()


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    proc = run("show", REAL, "--frame", "first", "--png", tmp_path / "x.png")
    assert proc.returncode == 2
    assert "--frame 'first' is not a whole number" in proc.stderr
    proc = run("info", REAL, "--dp", "img12")
    assert proc.returncode == 2
    assert "Unknown data product 'img12'" in proc.stderr


def test_dp_option_reads_a_file_without_a_product_in_its_name(tmp_path: Path) -> None:
    path = tmp_path / "frames.pff"
    shutil.copy(REAL, path)
    proc = run("info", path, "--dp", "ph256", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert (info["data_product"], info["module"], info["frames"]) == ("ph256", None, 88)
