"""Live plot windows of `panoseti daq view|phdist`: opening one, and feeding it from a stream.

A window needs its toolkit's event loop to run on the main thread, or it can be neither redrawn
nor closed, while the image stream blocks in `next()` until the next image arrives. So the stream
is read by a thread into a queue and the main thread alternates between drawing what arrived and
letting the window handle its events; closing the window ends the stream.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

#: How long the window handles its events between two looks at the queue.
EVENT_SLICE_SECONDS = 0.05
#: Images drawn from the queue per slice at most, so a fast stream cannot starve the window.
MAX_IMAGES_PER_SLICE = 500
NOTEBOOK = "examples/notebooks/daqdata_client_demo.ipynb"
NO_DISPLAY = (
    "no display for a window: render headless with --png OUT (and --duration S), "
    f"or watch the stream in the notebook {NOTEBOOK} (jupyter lab examples/notebooks)"
)


class WindowUnavailable(Exception):
    """No window can be opened here; the message says what to use instead."""


class LivePlot(Protocol):
    @property
    def figure(self) -> Any: ...

    @property
    def window_open(self) -> bool: ...

    def process_events(self, seconds: float) -> None: ...


P = TypeVar("P", bound=LivePlot)


def open_window(make: Callable[[], P]) -> P:
    """`make()` a plot with `interactive=True`, or say in one line why there is no window."""
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not display:
        raise WindowUnavailable(NO_DISPLAY)
    try:
        plot = make()
    except ValueError:
        raise
    except Exception as exc:  # each GUI toolkit fails its own way (ImportError, TclError, ...)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WindowUnavailable(_cannot_open(display, reason)) from exc
    canvas = plot.figure.canvas
    if getattr(canvas, "required_interactive_framework", None) is None:
        # matplotlib fell back to a non-interactive backend (no GUI toolkit, or a display it
        # could not reach): a window would never appear.
        raise WindowUnavailable(
            _cannot_open(display, f"matplotlib chose the non-interactive {type(canvas).__name__}")
        )
    return plot


def _cannot_open(display: str, reason: str) -> str:
    return (
        f"cannot open a window on display {display} ({reason}): render headless with --png OUT "
        f"(and --duration S), or use the notebook {NOTEBOOK}"
    )


def feed_window(
    images: Iterator[tuple[str, Any]], plot: LivePlot, stop: threading.Event
) -> Iterator[tuple[str, Any]]:
    """Yield `images` while keeping `plot`'s window live; closing the window sets `stop`.

    The stream's own errors are raised here, in the caller's thread, after the images that came
    before them.
    """
    inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
    failure: list[BaseException] = []

    def read() -> None:
        try:
            for item in images:
                inbox.put(item)
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - relayed, and raised in the caller's thread
            failure.append(exc)
        finally:
            stop.set()
            close = getattr(images, "close", None)
            if close is not None:
                close()  # end the stream's calls now, in the thread that iterated it

    reader = threading.Thread(target=read, name="image stream", daemon=True)
    reader.start()
    try:
        while plot.window_open and not (stop.is_set() and inbox.empty()):
            for _ in range(MAX_IMAGES_PER_SLICE):
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    break
                yield item
                if not plot.window_open:  # closed while that image was drawn
                    break
            plot.process_events(EVENT_SLICE_SECONDS)
    finally:
        stop.set()
        reader.join()
    if failure:
        raise failure[0]
