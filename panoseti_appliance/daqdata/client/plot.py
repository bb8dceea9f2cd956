"""Live plots of DaqData streams: PanoImagePreviewer and PulseHeightDistribution (docs/clients.md).

Both are fed parsed image dicts with `update(parsed)` and redraw at most every
`plot_update_interval` seconds. They draw into a window (`interactive=True`), a Jupyter notebook
(`jupyter_notebook=True`) or an off-screen Agg canvas (the default), and `save_png(path)` writes
the current state, so the same objects serve an observer's screen, a notebook and a headless node.
"""

from __future__ import annotations

import importlib
import io
import math
import textwrap
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator

from panoseti_appliance import pff

PH, MOVIE = "PULSE_HEIGHT", "MOVIE"
COLORMAP = "plasma"
LINE_STYLES = ("-", "--", ":", "-.")
PNG_DPI = 100


class _Surface:
    """Where a figure is shown: off-screen Agg, a pyplot window, or a notebook cell."""

    def __init__(self, figsize: tuple[float, float], interactive: bool, jupyter: bool) -> None:
        # A notebook cell gets PNGs, never a window: pyplot figures would also be shown again by
        # the inline backend at the end of the cell.
        self.interactive = interactive and not jupyter
        self.jupyter = jupyter
        if self.interactive:
            import matplotlib.pyplot as plt

            self.figure: Figure = plt.figure(figsize=figsize, layout="constrained")
        else:
            self.figure = Figure(figsize=figsize, layout="constrained")
            FigureCanvasAgg(self.figure)
        self._handle: Any = None
        self._shown = False

    @property
    def window_open(self) -> bool:
        """False once the window was closed; always True off-screen and in a notebook."""
        if not self.interactive:
            return True
        import matplotlib.pyplot as plt

        return bool(plt.fignum_exists(self.figure.number))

    def resize(self, figsize: tuple[float, float]) -> None:
        self.figure.set_size_inches(*figsize, forward=self.interactive and self.window_open)

    def show(self) -> None:
        if self.jupyter:
            ipython = importlib.import_module("IPython.display")
            # IPython shows a bare Figure as text unless pyplot's inline backend was set up, so
            # the cell gets the rendered PNG itself; updates replace it in place.
            image = ipython.Image(data=self.png_bytes(), format="png")
            if self._handle is None:
                self._handle = ipython.display(image, display_id=True)
            else:
                self._handle.update(image)
        elif self.interactive:
            if not self.window_open:
                return
            if not self._shown:
                self.figure.show()
                self._shown = True
            self.figure.canvas.draw_idle()
            self.figure.canvas.flush_events()
        # Off-screen: nothing to show; pixels are rendered only when saved.

    def process_events(self, seconds: float) -> None:
        """Let the window handle input and redraws for `seconds` (a plain sleep without one)."""
        if self.interactive and self._shown and self.window_open:
            self.figure.canvas.start_event_loop(seconds)
        else:
            time.sleep(seconds)

    def png_bytes(self) -> bytes:
        out = io.BytesIO()
        self.figure.savefig(out, format="png", dpi=PNG_DPI)
        return out.getvalue()

    def save_png(self, path: str | Path) -> Path:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.figure.savefig(out, format="png", dpi=PNG_DPI)
        return out


class _Plot:
    """What both plots share: their surface, the window state and PNG output."""

    _surface: _Surface

    @property
    def figure(self) -> Figure:
        return self._surface.figure

    @property
    def window_open(self) -> bool:
        """False once the user closed the plot's window (`interactive=True`)."""
        return self._surface.window_open

    def process_events(self, seconds: float) -> None:
        """Keep the window responsive (and closable) for `seconds` while no images arrive."""
        self._surface.process_events(seconds)

    def draw(self) -> None:
        raise NotImplementedError

    def save_png(self, path: str | Path) -> Path:
        """Draw the current state and write the figure as a PNG."""
        self.draw()
        return self._surface.save_png(path)


class _Throttle:
    """True at most once per `interval` seconds (monotonic clock)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last = -math.inf

    def ready(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now - self._last < self.interval:
            return False
        self._last = now
        return True


class ColourScale:
    """Colour limits of one image type from its last `window` images.

    vmax is the 95th percentile of the recent per-image maxima and vmin the 5th percentile of
    the minima, so one hot pixel or one dark frame does not wash the panel out; each image type
    keeps its own window (the original shared the last min/max across types).
    """

    def __init__(self, window: int) -> None:
        self.maxima: deque[float] = deque(maxlen=window)
        self.minima: deque[float] = deque(maxlen=window)

    def add(self, image: np.ndarray) -> None:
        self.maxima.append(float(image.max()))
        self.minima.append(float(image.min()))

    def limits(self) -> tuple[float, float]:
        if not self.maxima:
            return 0.0, 1.0
        vmin = float(np.percentile(self.minima, 5))
        vmax = float(np.percentile(self.maxima, 95))
        return (vmin, vmax + 1) if vmax <= vmin else (vmin, vmax)


def _panel_title(parsed: Mapping[str, Any], text_width: int) -> str:
    header = parsed["header"]
    kind = str(parsed["type"])
    if "quabo_num" in header:
        kind += f": Q{header['quabo_num']}"
    stamp = header.get("pandas_unix_timestamp")
    file = "\n".join(textwrap.wrap(f"file = {parsed['file']}", text_width)) or "file ="
    return f"{kind}\nunix_t = {stamp}\nframe_no = {parsed['frame_number']}\n{file}"


def _run_start(file: str) -> str | None:
    """The `start_<time>` of a PFF file name, if it has one."""
    try:
        name = pff.parse_data_file_name(file)
    except (ValueError, NotImplementedError):
        return None
    return name.start if name is not None else None


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class PanoImagePreviewer(_Plot):
    """One row per module: its newest pulse-height image (left) and movie image (right)."""

    def __init__(
        self,
        stream_movie_data: bool = True,
        stream_pulse_height_data: bool = True,
        module_id_whitelist: Iterable[int] = (),
        text_width: int = 30,
        font_size: int = 8,
        row_height: float = 3,
        window_size: int = 10,
        plot_update_interval: float = 1.0,
        jupyter_notebook: bool = False,
        *,
        interactive: bool = False,
    ) -> None:
        if not (stream_movie_data or stream_pulse_height_data):
            raise ValueError(
                "PanoImagePreviewer needs stream_movie_data or stream_pulse_height_data"
            )
        self.types = [
            t for t, on in ((PH, stream_pulse_height_data), (MOVIE, stream_movie_data)) if on
        ]
        self.whitelist = frozenset(module_id_whitelist)
        self.text_width = text_width
        self.font_size = font_size
        self.row_height = row_height
        self.scales = {t: ColourScale(window_size) for t in self.types}
        self.latest: dict[tuple[int, str], Mapping[str, Any]] = {}
        self.images_seen = 0
        self._throttle = _Throttle(plot_update_interval)
        self._surface = _Surface(self._figsize(1), interactive, jupyter_notebook)
        self._modules: list[int] = []
        self._axes: dict[tuple[int, str], Axes] = {}
        self._artists: dict[tuple[int, str], AxesImage] = {}
        self._start: str | None = None

    def _figsize(self, rows: int) -> tuple[float, float]:
        return (4.2 * len(self.types), self.row_height * rows + 0.8)

    def update(self, parsed: Mapping[str, Any]) -> bool:
        """Take one parsed image; redraw if the update interval has passed. True if redrawn."""
        kind = parsed["type"]
        module = int(parsed["module_id"])
        if kind not in self.scales or (self.whitelist and module not in self.whitelist):
            return False
        self.latest[(module, kind)] = parsed
        self.scales[kind].add(parsed["image_array"])
        self.images_seen += 1
        if self._start is None:
            self._start = _run_start(parsed["file"]) or _utc_now()
        if self._throttle.ready():
            self.draw()
            return True
        return False

    def draw(self) -> None:
        """Redraw every panel from the newest images."""
        modules = sorted({module for module, _ in self.latest})
        if modules != self._modules:
            self._layout(modules)
        for key, parsed in self.latest.items():
            self._draw_panel(key, parsed)
        scope = sorted(self.whitelist) if self.whitelist else modules
        self.figure.suptitle(
            f"Obs data from {self._start or _utc_now()}, module_ids={set(scope)} "
            f"[{'filtered' if self.whitelist else 'all'}]",
            fontsize=self.font_size + 2,
        )
        self._surface.show()

    def _layout(self, modules: list[int]) -> None:
        self.figure.clear()
        self._modules = modules
        self._axes.clear()
        self._artists.clear()
        self._surface.resize(self._figsize(len(modules)))
        grid = self.figure.subplots(len(modules), len(self.types), squeeze=False)
        for row, module in enumerate(modules):
            for col, kind in enumerate(self.types):
                ax = grid[row][col]
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_ylabel(f"module {module}", fontsize=self.font_size)
                self._axes[(module, kind)] = ax

    def _draw_panel(self, key: tuple[int, str], parsed: Mapping[str, Any]) -> None:
        ax = self._axes[key]
        image = parsed["image_array"]
        vmin, vmax = self.scales[key[1]].limits()
        artist = self._artists.get(key)
        if artist is None or artist.get_array().shape != image.shape:  # type: ignore[union-attr]
            if artist is not None:
                artist.colorbar.remove()  # type: ignore[union-attr]
                artist.remove()
            artist = ax.imshow(image, cmap=COLORMAP, vmin=vmin, vmax=vmax, interpolation="nearest")
            bar = self.figure.colorbar(artist, ax=ax, fraction=0.046, pad=0.04)
            bar.set_label("ADC", fontsize=self.font_size)
            bar.locator = MaxNLocator(nbins=6)
            bar.ax.tick_params(labelsize=self.font_size)
            self._artists[key] = artist
        else:
            artist.set_data(image)
            artist.set_clim(vmin, vmax)
        if artist.colorbar is not None:
            artist.colorbar.update_ticks()
        ax.set_title(_panel_title(parsed, self.text_width), fontsize=self.font_size, loc="left")


@dataclass
class _Window:
    """One tumbling window of per-module maxima."""

    duration: float
    started: float
    refreshed: str = "Never"
    maxima: dict[int, list[int]] = field(default_factory=dict)


class PulseHeightDistribution(_Plot):
    """Histograms of the per-image maximum pulse height per module, over tumbling windows."""

    def __init__(
        self,
        durations_seconds: Iterable[float] = (10, 60, 600),
        module_ids: Iterable[int] = (),
        plot_update_interval: float = 1.0,
        jupyter_notebook: bool = False,
        *,
        interactive: bool = False,
        bins: int = 75,
    ) -> None:
        durations = [float(d) for d in durations_seconds]
        if not durations or any(d <= 0 for d in durations):
            raise ValueError(
                f"durations_seconds must be positive numbers of seconds, got {durations}"
            )
        now = time.monotonic()
        self.windows = [_Window(d, now) for d in durations]
        self.module_ids = frozenset(module_ids)
        self.bins = bins
        self.images_seen = 0
        self._throttle = _Throttle(plot_update_interval)
        self._surface = _Surface(
            (8.0, max(2.9 * len(durations), 6.0)), interactive, jupyter_notebook
        )

    def update(self, parsed: Mapping[str, Any], now: float | None = None) -> bool:
        """Record one pulse-height image's maximum (movie images are ignored). True if redrawn."""
        if parsed["type"] != PH:
            return False
        module = int(parsed["module_id"])
        if self.module_ids and module not in self.module_ids:
            return False
        now = time.monotonic() if now is None else now
        peak = int(parsed["image_array"].max())
        for window in self.windows:
            if now - window.started > window.duration:
                window.maxima.clear()
                window.started = now
                window.refreshed = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
            window.maxima.setdefault(module, []).append(peak)
        self.images_seen += 1
        if self._throttle.ready(now):
            self.draw()
            return True
        return False

    def draw(self) -> None:
        """Redraw every window's histograms."""
        import seaborn as sns

        fig = self.figure
        fig.clear()
        axes = fig.subplots(len(self.windows), 1, squeeze=False)[:, 0]
        modules = sorted({m for w in self.windows for m in w.maxima})
        colours = dict(zip(modules, sns.color_palette("husl", max(len(modules), 1)), strict=False))
        # Dashes as well as colours, so modules with identical distributions stay visible.
        styles = {m: LINE_STYLES[i % len(LINE_STYLES)] for i, m in enumerate(modules)}
        for ax, window in zip(axes, self.windows, strict=True):
            for module in sorted(window.maxima):
                values = np.asarray(window.maxima[module])
                sns.histplot(
                    values,
                    bins=self.bins,
                    stat="density",
                    element="step",
                    fill=False,
                    kde=len(np.unique(values)) > 1,
                    color=colours[module],
                    linestyle=styles[module],
                    line_kws={"linestyle": styles[module]},
                    label=str(module),
                    ax=ax,
                )
            ax.set_title(
                f"Refresh interval = {window.duration:g}s | Last refresh = {window.refreshed}"
            )
            ax.set_xlabel("ADC Value")
            ax.set_ylabel("Density")
            if window.maxima:
                ax.legend(title="Module")
        fig.suptitle("Distribution of Max Pulse-Heights")
        self._surface.show()
