"""A private X server for the live-window tests: start Xvfb, take screenshots, close windows.

Windows are closed as a window manager closes them when the user clicks the close button: a
WM_DELETE_WINDOW message to each top-level window that asks for one (there is no window manager
under Xvfb to do it).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import IO

import numpy as np

from tests.prerequisites import unavailable

SCREEN = (1280, 1024)
START_TIMEOUT = 30.0


def require_x() -> None:
    """Skip (fail under `make test`) unless Xvfb, Tk and python-xlib are here."""
    missing = []
    if shutil.which("Xvfb") is None:
        missing.append("Xvfb (Debian package xvfb)")
    try:
        import tkinter  # noqa: F401
    except ImportError:
        missing.append("tkinter (Debian package python3-tk)")
    try:
        import Xlib  # noqa: F401
    except ImportError:
        missing.append("python-xlib (the dev extra)")
    if missing:
        unavailable("live-window tests need " + ", ".join(missing))


@contextlib.contextmanager
def xvfb() -> Iterator[str]:
    """A new Xvfb on the first free display number; yields its DISPLAY value (":N")."""
    width, height = SCREEN
    # -noreset: the server stays as it is between two screenshots' connections.
    command = ["Xvfb", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp", "-noreset"]
    read_end, write_end = os.pipe()
    # Its log goes to a file, not a pipe, so Xvfb never blocks on its own warnings.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [*command, "-displayfd", str(write_end)],
            pass_fds=(write_end,),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        os.close(write_end)
        try:
            yield f":{_display_number(read_end, proc, log)}"
        finally:
            os.close(read_end)
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _display_number(pipe: int, proc: subprocess.Popen[bytes], log: IO[bytes]) -> int:
    """The display number Xvfb writes to its -displayfd once it accepts connections."""
    text = b""
    deadline = time.monotonic() + START_TIMEOUT
    while not text.endswith(b"\n"):
        ready, _, _ = select.select([pipe], [], [], max(deadline - time.monotonic(), 0))
        chunk = os.read(pipe, 16) if ready else b""
        if not chunk:
            proc.kill()
            proc.wait()
            log.seek(0)
            raise RuntimeError(f"Xvfb did not start: {log.read().decode(errors='replace')}")
        text += chunk
    return int(text)


def screenshot(display: str) -> np.ndarray:
    """The whole screen as an (height, width, 3) uint8 RGB array."""
    from PIL import ImageGrab

    return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))


def close_windows(display: str) -> int:
    """Ask every top-level window to close (WM_DELETE_WINDOW); how many were asked."""
    from Xlib import X, protocol
    from Xlib.display import Display

    connection = Display(display)
    try:
        wm_protocols = connection.intern_atom("WM_PROTOCOLS")
        delete = connection.intern_atom("WM_DELETE_WINDOW")
        asked = 0
        for window in connection.screen().root.query_tree().children:
            if delete not in (window.get_wm_protocols() or []):
                continue
            event = protocol.event.ClientMessage(
                window=window,
                client_type=wm_protocols,
                data=(32, [delete, X.CurrentTime, 0, 0, 0]),
            )
            window.send_event(event, event_mask=X.NoEventMask)
            asked += 1
        connection.sync()
        return asked
    finally:
        connection.close()
