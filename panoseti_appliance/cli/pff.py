"""`panoseti pff info|show`: look inside a PFF data file without writing any code.

`info` summarises a whole file (product, module, frames, times, pixel range) in one streaming
pass, so it works on files far larger than memory; `show` renders one frame to a PNG off-screen,
so it works on a headless DAQ node. Both print a one-line error and exit 1 for a missing file, a
bad frame number or a malformed file, because operators run them on data of unknown health.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections import deque
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from panoseti_appliance import pff
from panoseti_appliance.cli.actions import add_action
from panoseti_appliance.products import NAMES, DataProduct, UnknownDataProduct, by_name

#: What `info` prints for a White Rabbit time when the WR and host clocks disagree.
DESYNC = "desync"


class PffCliError(Exception):
    """A problem the user can fix; printed as one line, exit status 1."""


@dataclass(frozen=True)
class FrameTimes:
    """The two clocks of one frame, as exact text (WR to the ns, host to the µs)."""

    wr: str
    host: str
    host_utc: str

    @classmethod
    def of(cls, frame: pff.PffFrame) -> FrameTimes:
        wr = pff.header_wr_time(frame.header)
        host = host_time(frame.header)
        return cls(
            wr=DESYNC if wr.desync else str(wr.decimal),
            host="" if host is None else str(host),
            host_utc="" if host is None else utc_text(host),
        )


@dataclass(frozen=True)
class FileSummary:
    """Everything `panoseti pff info` reports about one file."""

    file: str
    data_product: str
    module: int | None
    frames: int
    frame_size: int | None
    uniform_frame_size: bool
    trailing_bytes: int
    wr_desync_frames: int
    first: FrameTimes | None
    last: FrameTimes | None
    pixel_min: int | None
    pixel_max: int | None
    pixel_mean: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def host_time(header: dict[str, Any]) -> Decimal | None:
    """`tv_sec + tv_usec/1e6` of a header as exact seconds; None when the fields are missing."""
    us = pff.header_host_time_us(header)
    return None if us is None else Decimal(us).scaleb(-6)


def utc_text(seconds: Decimal) -> str:
    """Unix seconds as `YYYY-MM-DD HH:MM:SS.ffffff UTC`, or the number itself when out of range."""
    try:
        stamp = dt.datetime.fromtimestamp(float(seconds), tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{seconds} s (not a representable date)"
    return stamp.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _product(path: Path, dp: DataProduct | None) -> tuple[DataProduct, int | None]:
    name = pff.parse_data_file_name(path)
    if name is None and dp is None:
        raise PffCliError(
            f"{path}: the file name has no dp_<product> piece (as in start_….dp_ph256….pff); "
            f"give the data product with --dp {{{','.join(NAMES)}}}"
        )
    product = pff.resolve_data_product(path, dp)  # PffError for an unknown product name
    return product, None if name is None else name.module


def _check_file(path: Path) -> None:
    if not path.exists():
        raise PffCliError(f"{path}: no such file")
    if not path.is_file():
        raise PffCliError(f"{path}: not a regular file")


def summarize(path: str | os.PathLike[str], dp: DataProduct | None = None) -> FileSummary:
    """Read the whole file once and summarise it; a partial last frame is counted, not fatal.

    `dp` overrides the data product named in the file name (needed when the name has none).
    """
    file = Path(path)
    _check_file(file)
    dp, module = _product(file, dp)
    frames = 0
    sizes: set[int] = set()
    desync = 0
    first: pff.PffFrame | None = None
    last: pff.PffFrame | None = None
    lo: int | None = None
    hi: int | None = None
    total = 0
    for frame in pff.iter_frames(file, dp, strict=False):
        image = frame.image()
        lo = int(image.min()) if lo is None else min(lo, int(image.min()))
        hi = int(image.max()) if hi is None else max(hi, int(image.max()))
        total += int(image.sum(dtype=np.int64))
        sizes.add(frame.size)
        desync += pff.header_wr_time(frame.header).desync
        first = first or frame
        last = frame
        frames += 1
    end = 0 if last is None else last.end
    return FileSummary(
        file=str(file),
        data_product=dp.name,
        module=module,
        frames=frames,
        frame_size=None if first is None else first.size,
        uniform_frame_size=len(sizes) <= 1,
        trailing_bytes=file.stat().st_size - end,
        wr_desync_frames=desync,
        first=None if first is None else FrameTimes.of(first),
        last=None if last is None else FrameTimes.of(last),
        pixel_min=lo,
        pixel_max=hi,
        pixel_mean=None if frames == 0 else total / (frames * dp.pixels),
    )


def format_summary(s: FileSummary) -> str:
    """The human-readable `info` text, one `key: value` per line."""
    size = "-" if s.frame_size is None else f"{s.frame_size} B"
    if not s.uniform_frame_size:
        size += " (first frame; later frames differ)"
    lines = [
        f"file:         {s.file}",
        f"data product: {s.data_product}",
        f"module:       {'-' if s.module is None else s.module}",
        f"frames:       {s.frames}",
        f"frame size:   {size}",
    ]
    if s.trailing_bytes:
        lines.append(f"partial tail: {s.trailing_bytes} B after the last complete frame")
    if s.first is not None and s.last is not None:
        lines += [
            f"WR time:      {s.first.wr} → {s.last.wr}"
            f"  ({s.wr_desync_frames} of {s.frames} frames desync)",
            f"host time:    {s.first.host} → {s.last.host}",
            f"              {s.first.host_utc} → {s.last.host_utc}",
            f"pixels:       min {s.pixel_min}, max {s.pixel_max}, mean {s.pixel_mean:.3f}",
        ]
    return "\n".join(lines)


def read_frame(
    path: str | os.PathLike[str], index: int, dp: DataProduct | None = None
) -> tuple[pff.PffFrame, int]:
    """Frame `index` (negative counts from the end) and the file's frame count.

    One streaming pass that keeps at most |index| frames, so a multi-GB file costs no more
    memory than a small one.
    """
    file = Path(path)
    _check_file(file)
    dp, _ = _product(file, dp)
    recent: deque[pff.PffFrame] = deque(maxlen=max(1, -index))
    wanted: pff.PffFrame | None = None
    n = 0
    for frame in pff.iter_frames(file, dp, strict=False):
        if frame.index == index:
            wanted = frame
        recent.append(frame)
        n += 1
    if index < 0 and n >= -index:
        wanted = recent[0]
    if wanted is None:
        valid = "the file has no complete frame" if n == 0 else f"valid: 0..{n - 1} or -1..-{n}"
        raise PffCliError(f"{file}: no frame {index}; {valid}")
    return wanted, n


def render_frame_png(
    frame: pff.PffFrame, out: str | os.PathLike[str], *, module: int | None = None
) -> Path:
    """Draw one frame with a colourbar and a title naming module, product, frame and time."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    times = FrameTimes.of(frame)
    when = times.host_utc or "no host time"
    wr = "WR desync" if times.wr == DESYNC else f"WR {times.wr}"
    who = "module ?" if module is None else f"module {module}"
    fig = Figure(figsize=(6.0, 5.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    shown = ax.imshow(frame.image(), cmap="viridis", interpolation="nearest")
    label = "pulse height (ADC)" if frame.dp.is_pulse_height else "photon counts"
    fig.colorbar(shown, ax=ax, label=label)
    ax.set_title(f"{who} · {frame.dp.name} · frame {frame.index}\n{when} ({wr})", fontsize=10)
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    target = Path(out).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format="png")
    return target


def show(
    path: str | os.PathLike[str],
    index: int,
    out: str | os.PathLike[str],
    dp: DataProduct | None = None,
) -> Path:
    """Render frame `index` of `path` to the PNG `out`; returns the absolute PNG path."""
    frame, _ = read_frame(path, index, dp)
    name = pff.parse_data_file_name(path)
    return render_frame_png(frame, out, module=None if name is None else name.module)


def _frame_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--frame {text!r} is not a whole number; give a 0-based index such as 0, or -1 "
            "for the last frame"
        ) from None


def _data_product(text: str) -> DataProduct:
    try:
        return by_name(text)
    except UnknownDataProduct as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_dp_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dp",
        type=_data_product,
        metavar="{" + ",".join(NAMES) + "}",
        help="data product, when the file name has no dp_<product> piece",
    )


def register(parser: argparse.ArgumentParser) -> None:
    """Fill the `panoseti pff` parser."""
    actions = parser.add_subparsers(dest="pff_command", metavar="ACTION")
    actions.required = True
    info = add_action(
        actions, "info", "summarise a PFF file: frames, times, pixel range", _run_info
    )
    info.add_argument("file", metavar="FILE", help="a .pff data file (start_….dp_<dp>….pff)")
    info.add_argument("--json", action="store_true", help="print one JSON object instead")
    _add_dp_option(info)
    draw = add_action(actions, "show", "render one frame of a PFF file to a PNG", _run_show)
    draw.add_argument("file", metavar="FILE", help="a .pff data file (start_….dp_<dp>….pff)")
    draw.add_argument(
        "--frame",
        type=_frame_number,
        default=0,
        help="0-based frame index; negative counts from the end (default 0)",
    )
    draw.add_argument("--png", required=True, metavar="OUT", help="where to write the PNG")
    _add_dp_option(draw)


def _fail(exc: Exception) -> int:
    print(f"panoseti pff: {exc}", file=sys.stderr)
    return 1


def _run_info(args: argparse.Namespace) -> int:
    try:
        summary = summarize(args.file, args.dp)
    except (PffCliError, pff.PffError, OSError) as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        print(format_summary(summary))
    return 0


def _run_show(args: argparse.Namespace) -> int:
    try:
        target = show(args.file, args.frame, args.png, args.dp)
    except (PffCliError, pff.PffError, OSError) as exc:
        return _fail(exc)
    print(f"wrote {target}")
    return 0
