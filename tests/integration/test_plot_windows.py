"""`panoseti daq view` and `phdist` in real windows (TkAgg under Xvfb), fed by a live daemon.

Each command streams from the simulator until a screenshot shows its panels, then its window is
closed as a user closes it, which must end the command with exit code 0. Without a usable
display, the commands say so in one line.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from PIL import Image

from panoseti_appliance.cli.window import feed_window
from panoseti_appliance.daqdata.client.plot import PanoImagePreviewer
from tests import screenshot
from tests.daemons import Daemon, clean_environ
from tests.xdisplay import close_windows, require_x, xvfb
from tests.xdisplay import screenshot as grab

pytestmark = pytest.mark.slow

PANOSETI = str(Path(sys.executable).parent / "panoseti")
#: Generous bounds for a loaded 2-core machine; each wait ends as soon as its condition holds.
SHOW_TIMEOUT = 60.0
EXIT_TIMEOUT = 30.0
T = TypeVar("T")


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    require_x()
    with xvfb() as name:
        yield name


def env(**extra: str) -> dict[str, str]:
    """This environment without any display or appliance settings, plus `extra`."""
    return clean_environ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND", **extra)


class Command:
    """A `panoseti daq` subprocess with its output in files (nothing can block on a pipe)."""

    def __init__(self, tmp_path: Path, args: list[str], environ: dict[str, str]) -> None:
        self.out, self.err = tmp_path / "stdout", tmp_path / "stderr"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [PANOSETI, "daq", *args], stdout=out, stderr=err, env=environ
            )

    def output(self) -> str:
        return f"stdout:\n{self.out.read_text()}\nstderr:\n{self.err.read_text()}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_for(what: str, probe: Callable[[], T | None], command: Command) -> T:
    """Call `probe` until it returns something; fail if the command exits or time runs out."""
    deadline = time.monotonic() + SHOW_TIMEOUT
    while True:
        found = probe()
        if found is not None:
            return found
        if command.proc.poll() is not None:
            pytest.fail(f"exited with {command.proc.returncode} before {what}\n{command.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {SHOW_TIMEOUT:g} s\n{command.output()}")
        time.sleep(0.3)


def close_and_wait(display: str, command: Command) -> str:
    """Close the window as a user would; the command must end with 0. Its stdout."""
    assert close_windows(display) == 1
    try:
        command.proc.wait(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {EXIT_TIMEOUT:g} s after its window was closed")
    assert command.proc.returncode == 0, command.output()
    assert "Traceback" not in command.err.read_text(), command.output()
    return command.out.read_text()


def assert_not_blank(rgb: np.ndarray) -> None:
    box = screenshot.window_box(rgb)
    assert box is not None, "nothing on the screen"
    window = rgb[box.top : box.top + box.height, box.left : box.left + box.width]
    assert box.width >= 400, box
    assert box.height >= 400, box
    assert screenshot.distinct_colours(window) > 100
    assert float(window.std()) > 20


def test_view_window_shows_every_module_live_and_closes_cleanly(
    display: str, sim_daqdata: Daemon, tmp_path: Path
) -> None:
    command = Command(
        tmp_path,
        ["--host", sim_daqdata.target, "view", "--refresh-period", "0.3"],
        env(DISPLAY=display, MPLBACKEND="TkAgg"),
    )
    try:

        def four_panels() -> tuple[np.ndarray, screenshot.Panels] | None:
            rgb = grab(display)
            found = screenshot.panels(rgb)
            return (rgb, found) if len(found.images) == 4 else None

        first, found = wait_for("4 image panels", four_panels, command)
        Image.fromarray(first).save(tmp_path / "view.png")
        assert_not_blank(first)
        # Modules 1 and 254, each a pulse-height and a movie image with its colour bar.
        assert len(found.colour_bars) == 4, found
        assert len({b.top for b in found.images}) == 2
        assert len({b.left for b in found.images}) == 2

        def changed() -> bool | None:
            rgb = grab(display)
            return True if any(_differs(first, rgb, b) for b in found.images) else None

        wait_for("new images in the panels", changed, command)
        out = close_and_wait(display, command)
    finally:
        command.stop()
    assert "view: " in out, out
    assert "; window closed" in out, out


def _differs(a: np.ndarray, b: np.ndarray, box: screenshot.Box) -> bool:
    window = (slice(box.top, box.top + box.height), slice(box.left, box.left + box.width))
    return bool((a[window] != b[window]).any())


def test_phdist_window_shows_one_panel_per_duration_and_closes_cleanly(
    display: str, sim_daqdata: Daemon, tmp_path: Path
) -> None:
    args = ["phdist", "--durations", "5", "30", "--refresh-period", "0.5"]
    command = Command(
        tmp_path, ["--host", sim_daqdata.target, *args], env(DISPLAY=display, MPLBACKEND="TkAgg")
    )
    try:

        def histograms() -> np.ndarray | None:
            rgb = grab(display)
            if screenshot.horizontal_rules(rgb, 0.6) != 4:  # top and bottom spine of each axes
                return None
            # Modules 1 and 254 drawn in their two colours (axes, text and toolbar have none).
            return rgb if len(screenshot.line_hues(rgb)) == 2 else None

        shown = wait_for("2 axes with the histograms of 2 modules", histograms, command)
        Image.fromarray(shown).save(tmp_path / "phdist.png")
        assert_not_blank(shown)
        assert screenshot.panels(shown).images == []  # no image panels in a distribution
        out = close_and_wait(display, command)
    finally:
        command.stop()
    assert "phdist: " in out, out
    assert "; window closed" in out, out


@pytest.mark.parametrize("command", ["view", "phdist"])
def test_without_a_display_one_line_suggests_png_or_the_notebook(command: str) -> None:
    result = subprocess.run(
        [PANOSETI, "daq", "--host", "127.0.0.1:9", command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env(),
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no display for a window" in lines[0]
    assert "--png OUT" in lines[0]
    assert "examples/notebooks/daqdata_client_demo.ipynb" in lines[0]


def test_an_unreachable_display_is_one_line_too(tmp_path: Path) -> None:
    free = next(n for n in range(4000, 5000) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    for backend in ({}, {"MPLBACKEND": "TkAgg"}):
        result = subprocess.run(
            [PANOSETI, "daq", "--host", "127.0.0.1:9", "view"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env(DISPLAY=f":{free}", **backend),
        )
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert f"cannot open a window on display :{free}" in lines[0]
        assert "--png OUT" in lines[0]
        assert "notebook" in lines[0]


def test_feed_window_passes_every_image_and_raises_the_streams_error() -> None:
    """The reader thread's side of a window, with an off-screen plot (always "open")."""
    plot = PanoImagePreviewer()

    def stream(fail: bool) -> Iterator[tuple[str, int]]:
        yield from (("host", n) for n in range(5))
        if fail:
            raise ConnectionError("server went away")

    stop = threading.Event()
    assert [n for _, n in feed_window(stream(False), plot, stop)] == [0, 1, 2, 3, 4]
    assert stop.is_set()  # the stream ended: so does the feed
    received: list[int] = []

    def collect(images: Iterator[tuple[str, int]]) -> None:
        """Keep each image as it comes: the ones before the error are part of the check."""
        for _, n in images:
            received.append(n)

    with pytest.raises(ConnectionError, match="server went away"):
        collect(feed_window(stream(True), plot, threading.Event()))
    assert received == [0, 1, 2, 3, 4]
