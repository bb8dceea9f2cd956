"""`make demo`'s script, shortened: a live daemon, the Hashpipe emulator, two PNGs, images/s."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.unit.test_plot import assert_png_looks_live

DEMO = Path(__file__).parents[2] / "tools" / "demo.py"


def test_demo_streams_and_writes_both_pngs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO), "--duration", "3", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Bundled sample run" in out
    assert "ph256" in out
    assert "img16" in out
    rate = re.search(r"received (\d+) images in [\d.]+ s = ([\d.]+) images/s", out)
    assert rate, out
    assert int(rate.group(1)) > 0
    assert float(rate.group(2)) > 0
    assert re.search(r"client parsing \(CPU\) [\d.]+ µs per image", out)
    for name in ("preview.png", "phdist.png"):
        assert f"wrote {tmp_path / name}" in out
        assert_png_looks_live(tmp_path / name)
    assert "daemon stopped cleanly" in out
