"""Test producers that behave like the real ones: Hashpipe on its sockets, the DAQ writing run dirs.

Hashpipe socket side (docs/ingestion.md, "What travels on a socket"): each frame is ONE sendmsg
of the four pieces `be16(module)`, the socket-layout JSON header, `b"\\n\\n*"` and the
little-endian pixels, exactly like Hashpipe's writev; `send_torn` sends only a prefix (what a
short writev leaves behind) and `send_garbage` sends noise.

    with HashpipeProducer(path, "ph256") as p:
        sent = p.send(module=3)            # a valid frame; returns what was sent
        p.send_torn(module=3, keep=200)    # first 200 bytes of a frame, nothing more
        p.send_garbage(100)
        p.reconnect()

Filesystem side (docs/ingestion.md, "File polling"): `write_run(data_dir, module, dp, n, seqno)`
creates `data_dir/module_<m>/<run>/start_….dp_<dp>.bpp_<n>.module_<m>.seqno_<s>.pff` with `n`
frames in the file writer's layout; `append_frames` grows an existing file. Pixels and `pkt_num`
are derived from (module, index) so a test can tell exactly which frame arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from panoseti_appliance import pff
from panoseti_appliance.daqdata.server.frame import Frame, FrameSink
from panoseti_appliance.daqdata.sim.hashpipe import connect_unix
from panoseti_appliance.products import DataProduct, by_name

DEFAULT_RUN = "obs_TEST.start_2025-08-02T05_31_36Z.runtype_sci-data.pffd"
DEFAULT_START = "2025-08-02T05:31:36Z"
CONNECT_TIMEOUT = 30.0
#: Generous deadline for anything a test waits for on a loaded machine.
WAIT = 30.0


def _dp(dp: DataProduct | str) -> DataProduct:
    return dp if isinstance(dp, DataProduct) else by_name(dp)


def frame_pixels(dp: DataProduct | str, module: int, index: int) -> bytes:
    """The raw pixel bytes of frame `index` of `module` (deterministic, full value range)."""
    d = _dp(dp)
    rng = np.random.default_rng([module, index, d.bytes_per_pixel, d.pixels])
    info = np.iinfo(d.raw_dtype)
    values = rng.integers(int(info.min), int(info.max), size=d.pixels, endpoint=True)
    return values.astype(d.raw_dtype).tobytes()


def frame_fields(dp: DataProduct | str, index: int, quabo: int = 0) -> dict[str, Any]:
    """Header fields for format_header: pkt_num = index, host and White Rabbit time of now."""
    d = _dp(dp)
    now = time.time_ns()
    tv_sec, rest = divmod(now, 1_000_000_000)
    tv_usec = rest // 1000
    one = {
        "pkt_num": index % 2**32,
        "pkt_tai": (tv_sec + pff.TAI_UTC_OFFSET_S) % 1024,
        "pkt_nsec": tv_usec * 1000,
        "tv_sec": tv_sec,
        "tv_usec": tv_usec,
    }
    if d.name == "ph256":
        return {"quabo_num": quabo, **one}
    return {f"quabo_{i}": dict(one) for i in range(4)}


@dataclass(frozen=True)
class SentFrame:
    """What one `send` put on the wire."""

    module: int
    index: int
    header: bytes
    pixels: bytes
    wire: bytes


def socket_frame(
    dp: DataProduct | str,
    module: int,
    index: int = 0,
    *,
    header: Mapping[str, Any] | bytes | None = None,
    pixels: bytes | None = None,
) -> SentFrame:
    """One Hashpipe socket frame: be16(module) + socket-layout header + b"\\n\\n*" + pixels."""
    d = _dp(dp)
    if header is None:
        header = frame_fields(d, index)
    raw_header = header if isinstance(header, bytes) else pff.format_header(d, header, "socket")
    px = frame_pixels(d, module, index) if pixels is None else pixels
    wire = struct.pack(">H", module) + raw_header + pff.HEADER_END + px
    return SentFrame(module, index, raw_header, px, wire)


class HashpipeProducer:
    """A Hashpipe-like producer connected to one data product's socket."""

    def __init__(self, path: str | os.PathLike[str], dp: DataProduct | str) -> None:
        self.path = str(path)
        self.dp = _dp(dp)
        self.sent = 0
        self._index: dict[int, int] = {}
        self._sock: socket.socket | None = None
        self.connect()

    def connect(self, timeout: float = CONNECT_TIMEOUT) -> None:
        """Connect, retrying until the socket accepts (the daemon may still be starting)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._sock = connect_unix(self.path, timeout)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            else:
                return

    @property
    def sock(self) -> socket.socket:
        if self._sock is None:
            raise RuntimeError("producer is closed")
        return self._sock

    def next_index(self, module: int) -> int:
        """The index the next frame of `module` gets (counts every frame built, sent or torn)."""
        return self._index.get(module, 0)

    def _build(
        self, module: int, pixels: bytes | None, header: Mapping[str, Any] | bytes | None
    ) -> SentFrame:
        index = self._index.get(module, 0)
        self._index[module] = index + 1
        return socket_frame(self.dp, module, index, header=header, pixels=pixels)

    def _sendmsg(self, pieces: list[bytes]) -> None:
        sent = self.sock.sendmsg(pieces)
        rest = b"".join(pieces)[sent:]
        if rest:
            self.sock.sendall(rest)

    def send(
        self,
        module: int,
        pixels: bytes | None = None,
        header: Mapping[str, Any] | bytes | None = None,
    ) -> SentFrame:
        """Send one complete frame as one sendmsg of four pieces, like Hashpipe's writev."""
        f = self._build(module, pixels, header)
        self._sendmsg([f.wire[:2], f.header, pff.HEADER_END, f.pixels])
        self.sent += 1
        return f

    def send_torn(self, module: int, keep: int | None = None) -> SentFrame:
        """Send only the first `keep` bytes of a frame (default: half), as a short writev does."""
        f = self._build(module, None, None)
        n = len(f.wire) // 2 if keep is None else keep
        if not 0 < n < len(f.wire):
            raise ValueError(f"keep must be between 1 and {len(f.wire) - 1}, got {n}")
        self._sendmsg([f.wire[:n]])
        return f

    def send_garbage(self, n: int, seed: int = 0) -> bytes:
        """Send `n` random bytes that contain no frame start."""
        data = garbage(n, seed)
        self._sendmsg([data])
        return data

    def send_raw(self, data: bytes) -> None:
        self._sendmsg([data])

    def reconnect(self) -> None:
        """Close the connection and open a new one, as Hashpipe does after an error."""
        self.close()
        self.connect()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> HashpipeProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def garbage(n: int, seed: int = 0) -> bytes:
    """`n` pseudo-random bytes with every "{" replaced, so they contain no frame marker."""
    data = random.Random(seed).randbytes(n)
    return data.replace(b"{", b"}")


def run_dir(data_dir: Path, module: int, run: str = DEFAULT_RUN) -> Path:
    """`data_dir/module_<module>/<run>`, created if needed."""
    path = data_dir / f"module_{module}" / run
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_file(
    data_dir: Path, module: int, dp: DataProduct | str, seqno: int = 0, run: str = DEFAULT_RUN
) -> Path:
    """Path of the data file of (module, dp, seqno) in `run` (directory created)."""
    name = pff.make_data_file_name(DEFAULT_START, _dp(dp), module, seqno)
    return run_dir(data_dir, module, run) / name


def file_frame(dp: DataProduct | str, module: int, index: int) -> bytes:
    """Frame `index` of `module` in the file writer's layout."""
    d = _dp(dp)
    header = pff.format_header(d, frame_fields(d, index), "file")
    return header + pff.HEADER_END + frame_pixels(d, module, index)


def append_frames(
    path: Path, dp: DataProduct | str, module: int, n: int, first: int | None = None
) -> int:
    """Append `n` frames to `path` (indices continue from the file's frame count unless `first`).

    Returns the index of the last frame appended. Each frame is written and flushed on its own,
    as the DAQ's writer does.
    """
    d = _dp(dp)
    if first is None:
        first = pff.count_frames(path, d) if path.exists() and path.stat().st_size else 0
    with path.open("ab") as f:
        for i in range(first, first + n):
            f.write(file_frame(d, module, i))
            f.flush()
    return first + n - 1


def write_run(
    data_dir: Path,
    module: int,
    dp: DataProduct | str,
    n: int,
    seqno: int = 0,
    run: str = DEFAULT_RUN,
) -> Path:
    """Create (or extend) the data file of (module, dp, seqno) in `run` with `n` frames."""
    path = data_file(data_dir, module, dp, seqno, run)
    append_frames(path, dp, module, n)
    return path


# --- running a source in-process --------------------------------------------------------------


async def until(cond: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll `cond` on the event loop until true; raise AssertionError after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


class _RunnableSource(Protocol):
    async def run(self, sink: FrameSink, ready: asyncio.Event) -> None: ...


@dataclass
class Collected:
    """Frames a running source delivered, in order."""

    frames: list[Frame] = field(default_factory=list)

    def of(self, module: int, dp: str) -> list[Frame]:
        return [f for f in self.frames if f.module_id == module and f.dp.name == dp]


@contextlib.asynccontextmanager
async def run_source(source: _RunnableSource) -> AsyncIterator[Collected]:
    """Run `source` as a task until ready; collect its frames; cancel it on exit."""
    got = Collected()
    ready = asyncio.Event()
    task = asyncio.create_task(source.run(got.frames.append, ready))
    waiter = asyncio.create_task(ready.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, timeout=WAIT, return_when="FIRST_COMPLETED")
        if task in done:
            task.result()  # re-raise the start-up error
            raise AssertionError("source ended before it was ready")
        if waiter not in done:
            raise AssertionError(f"source not ready after {WAIT}s")
        yield got
    finally:
        waiter.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
