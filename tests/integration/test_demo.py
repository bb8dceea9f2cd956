"""`make demo`'s two scripts, shortened: the DaqData demo (a live daemon, the Hashpipe emulator,
two PNGs, images/s) and the UbloxControl demo (an emulated ZED-F9T configured and streaming)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.unit.test_plot import assert_png_looks_live

TOOLS = Path(__file__).parents[2] / "tools"


def run_demo(script: str, *args: str) -> str:
    """Run tools/`script` for 3 s as `make demo` runs it; it must succeed. Its stdout."""
    result = subprocess.run(
        [sys.executable, str(TOOLS / script), "--duration", "3", *args],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_demo_streams_and_writes_both_pngs(tmp_path: Path) -> None:
    out = run_demo("demo.py", "--out", str(tmp_path))
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


def test_ublox_demo_initialises_the_receiver_and_streams() -> None:
    out = run_demo("demo_ublox.py")
    assert "InitF9t: SUCCESS: F9T initialized, configured, and verified successfully." in out
    assert " demo TIM-TP qErr=" in out
    assert " demo NAV-TIMEUTC " in out
