"""Hashpipe Unix-domain sockets: the production ingestion path (spec daqdata.md §C.3).

Hashpipe connects to one SOCK_STREAM socket per data product and writes, per frame, one writev
of `be16(module) + JSON header + b"\\n\\n*" + pixels` on a non-blocking socket. A short writev is
taken as success by the producer, so the stream can carry torn frames followed directly by the
next frame. `HashpipeFramer` is the sans-I/O parser that validates every frame and resynchronises
on the next frame start; `HashpipeListener` owns the listening sockets (bound here or adopted
from systemd) for the daemon's lifetime and runs one reader per producer connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import os
import re
import socket
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from panoseti_appliance.config.models import HashpipeSourceConfig
from panoseti_appliance.daqdata.frame import Frame, FrameSink
from panoseti_appliance.daqdata.sources.base import (
    SourceError,
    SourceStats,
    deliver,
    format_counts,
)
from panoseti_appliance.pff import HEADER_END, MAX_HEADER_BYTES, header_problem
from panoseti_appliance.products import DataProduct, by_name

log = logging.getLogger(__name__)

#: Where a frame starts: `{`, optional whitespace, `"quabo_` (both header layouts, every dp).
FRAME_MARKER = re.compile(rb'\{\s*"quabo_')
#: The module id prefix: 2 bytes, unsigned big-endian.
MODULE_ID_BYTES = 2
#: How far past the module id the header end may lie (spec: 4096 + 3).
HEADER_WINDOW = MAX_HEADER_BYTES + len(HEADER_END)
#: Bytes kept while looking for a marker that may be only partly received (longest real marker
#: is 11 bytes; generous for whitespace).
TAIL_KEEP = 64
#: Bytes needed after a frame boundary to tell whether the previous frame was torn in its last
#: few bytes (the next frame's marker then straddles the boundary).
STRADDLE_LOOKAHEAD = 16
#: The per-quabo packet and time fields every header carries (pff.md §3).
#: Drop reasons, each counted per connection and per source.
DROP_REASONS = ("bad_start", "no_header_end", "bad_header", "torn", "torn_emitted")
RECV_BYTES = 1 << 16
LISTEN_BACKLOG = 64
#: Linux SO_RCVBUFFORCE (not exported by the socket module): exceeds net.core.rmem_max when
#: the process has CAP_NET_ADMIN.
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def set_receive_buffer(sock: socket.socket, want: int) -> int:
    """Make SO_RCVBUF at least `want` if the kernel allows; return the effective size.

    The kernel caps SO_RCVBUF at net.core.rmem_max (about 208 KiB on stock Debian); with
    CAP_NET_ADMIN SO_RCVBUFFORCE lifts the cap. Otherwise the caller warns with the fix.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, want)
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < want:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, want)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


class HashpipeFramer:
    """Sans-I/O parser of one connection's byte stream (spec daqdata.md §C.3 robust reader).

    `feed(bytes)` returns the complete valid frames as (module id, header, pixel bytes). The
    header length is learned per frame, never assumed. A frame is emitted as soon as it is
    complete and no frame start appears inside it; if the next bytes then show that a frame
    start straddled its end (the frame was torn in its last bytes), the already emitted frame
    is counted as `torn_emitted` and its successor is still recovered from the kept tail.
    """

    def __init__(self, dp: DataProduct, parent_stats: SourceStats | None = None) -> None:
        self.dp = dp
        self.stats = SourceStats(parent_stats)
        self._buf = bytearray()
        self._body = dp.bytes_per_image
        # The header of the frame at the start of the buffer, while its body is incomplete.
        self._pending: tuple[int, dict[str, Any]] | None = None
        # The last bytes of the frame emitted just before the buffer start (straddle check).
        self._prev_tail = b""
        self._resyncing = False
        self.last_reason: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)

    @property
    def drops(self) -> int:
        """Total drop events of any reason on this stream."""
        return sum(self.stats[r] for r in DROP_REASONS)

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, dict[str, Any], bytes]]:
        """Add received bytes; return every frame they complete, in stream order."""
        buf = self._buf
        buf += data
        out: list[tuple[int, dict[str, Any], bytes]] = []
        pos = 0
        while len(buf) - pos >= 3:
            nxt = self._step(buf, pos, out)
            if nxt is None:
                break
            pos = nxt
        if pos:
            del buf[:pos]
        return out

    def _step(
        self, buf: bytearray, pos: int, out: list[tuple[int, dict[str, Any], bytes]]
    ) -> int | None:
        """Handle the frame starting at `pos`; the next start, or None to wait for more bytes."""
        if buf[pos + MODULE_ID_BYTES] != 0x7B:  # "{"
            return self._resync(buf, pos, "bad_start")
        if self._pending is not None:
            h, header = self._pending
            h += pos
        else:
            window_end = pos + MODULE_ID_BYTES + HEADER_WINDOW
            h = buf.find(HEADER_END, pos + MODULE_ID_BYTES, window_end)
            if h < 0:
                return None if len(buf) < window_end else self._resync(buf, pos, "no_header_end")
            parsed = self._parse_header(bytes(buf[pos + MODULE_ID_BYTES : h]))
            if parsed is None:
                return self._resync(buf, pos, "bad_header")
            header = parsed
        frame_end = h + len(HEADER_END) + self._body
        marker = FRAME_MARKER.search(buf, h + len(HEADER_END))
        if marker is not None and marker.start() < frame_end + MODULE_ID_BYTES:
            # The next frame began before this one ended: the producer's writev was short.
            self._pending = None
            self._drop("torn")
            cut = marker.start() - MODULE_ID_BYTES
            self.stats.add("garbage_bytes", cut - pos)
            self._prev_tail = b""
            return cut
        if len(buf) < frame_end:
            self._pending = (h - pos, header)
            return None
        self._pending = None
        module = (buf[pos] << 8) | buf[pos + 1]
        out.append((module, header, bytes(buf[h + len(HEADER_END) : frame_end])))
        self.stats.add("frames_in")
        self._prev_tail = bytes(buf[max(pos, frame_end - TAIL_KEEP) : frame_end])
        self._resyncing = False
        return frame_end

    def _parse_header(self, raw: bytes) -> dict[str, Any] | None:
        try:
            header = json.loads(raw)
        except ValueError:  # includes UnicodeDecodeError and JSONDecodeError
            return None
        if header_problem(header, self.dp) is not None:
            return None
        assert isinstance(header, dict)
        return header

    def _drop(self, reason: str) -> None:
        self.stats.add(reason)
        self.last_reason = reason
        if not self._resyncing:
            self._resyncing = True
            self.stats.add("resyncs")

    def _resync(self, buf: bytearray, pos: int, reason: str) -> int | None:
        """Skip to the next frame start after a bad one at `pos`; None to wait for more bytes."""
        self._pending = None
        if self._prev_tail:
            if len(buf) - pos < STRADDLE_LOOKAHEAD:
                return None
            tail, self._prev_tail = self._prev_tail, b""
            joined = tail + bytes(buf[pos : pos + STRADDLE_LOOKAHEAD])
            m = FRAME_MARKER.search(joined, MODULE_ID_BYTES)
            if m is not None and m.start() < len(tail) + MODULE_ID_BYTES:
                # The previous frame was torn in its last bytes and already emitted; its
                # successor's module id (and maybe more) lies in that frame's tail.
                self._drop("torn_emitted")
                buf[pos:pos] = tail[m.start() - MODULE_ID_BYTES :]
                return pos
        m = FRAME_MARKER.search(buf, pos + 3)
        if m is not None:
            self._drop(reason)
            cut = m.start() - MODULE_ID_BYTES
        else:
            cut = max(pos, len(buf) - TAIL_KEEP)
            if cut == pos:
                return None
            self._drop(reason)
        self.stats.add("garbage_bytes", cut - pos)
        return cut


class _Connection:
    """One producer connection: its framer, counters and burst-logging state."""

    def __init__(self, dp: DataProduct, conn_id: int, parent: SourceStats) -> None:
        self.framer = HashpipeFramer(dp, parent)
        self.label = f"uds {dp.name} connection #{conn_id}"
        self.in_burst = False
        self.burst_start_drops = 0


class HashpipeListener:
    """The Hashpipe sockets, one per configured data product, for the daemon's lifetime.

    `open()` binds them (or adopts sockets passed by systemd, by data-product name); `run()`
    accepts any number of producer connections and hands every valid frame to the sink with
    `file="uds_<dp>"` and a per-(module, dp) frame number that survives reconnects.
    """

    name = "uds"

    def __init__(
        self, cfg: HashpipeSourceConfig, inherited: Mapping[str, socket.socket] | None = None
    ) -> None:
        self.cfg = cfg
        self.stats = SourceStats()
        self._inherited = dict(inherited or {})
        self._dps = [by_name(n) for n in dict.fromkeys(cfg.data_products)]
        self._socks: dict[str, socket.socket] = {}
        self._paths: dict[str, str] = {}
        self._bound: dict[str, int] = {}  # dp -> inode of the socket file we created
        self._frame_numbers: dict[tuple[int, str], int] = {}
        self._conn_ids = 0

    def paths(self) -> dict[str, str]:
        """Socket path per data product (as configured, or as adopted from systemd)."""
        return dict(self._paths)

    def listening_sockets(self) -> dict[str, socket.socket]:
        """The open listening socket per data product (empty before open / after close)."""
        return dict(self._socks)

    def open(self) -> None:
        """Bind or adopt every configured socket; SourceError names the dp and path on failure."""
        if self._socks:
            return
        try:
            for dp in self._dps:
                inherited = self._inherited.get(dp.name)
                if inherited is not None:
                    self._adopt(dp, inherited)
                else:
                    self._bind(dp)
        except BaseException:
            self.close()
            raise

    def _adopt(self, dp: DataProduct, sock: socket.socket) -> None:
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            raise SourceError(
                f"uds source {dp.name}: the inherited socket named {dp.name!r} is not an "
                "AF_UNIX stream socket; fix ListenStream= in panoseti-daqdata.socket"
            )
        sock.setblocking(False)
        self._socks[dp.name] = sock
        name = sock.getsockname()
        self._paths[dp.name] = name if isinstance(name, str) else repr(name)
        log.info(
            "uds source %s: adopted listening socket %s from systemd", dp, self._paths[dp.name]
        )

    def _bind(self, dp: DataProduct) -> None:
        path = self.cfg.socket_template.format(dp=dp.name)
        where = f"uds source {dp.name}: {path}"
        if not Path(path).parent.is_dir():
            raise SourceError(f"{where}: directory {Path(path).parent} does not exist")
        self._remove_stale(where, path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(path)
            self._bound[dp.name] = os.stat(path).st_ino
            self._socks[dp.name] = sock
            self._paths[dp.name] = path
            os.chmod(path, self.cfg.socket_mode)
            if self.cfg.socket_group:
                try:
                    gid = grp.getgrnam(self.cfg.socket_group).gr_gid
                except KeyError:
                    raise SourceError(
                        f"{where}: socket_group {self.cfg.socket_group!r} does not exist; "
                        "create it or set daqdata.hashpipe.socket_group to an existing group"
                    ) from None
                os.chown(path, -1, gid)
            self._check_receive_buffer(dp, sock)
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
        except OSError as exc:
            if dp.name not in self._socks:
                sock.close()
            raise SourceError(f"{where}: {exc.strerror or exc}") from exc
        log.info("uds source %s: listening on %s (mode %o)", dp, path, self.cfg.socket_mode)

    def _check_receive_buffer(self, dp: DataProduct, sock: socket.socket) -> None:
        want = self.cfg.receive_buffer_bytes
        got = set_receive_buffer(sock, want)
        if got < want:
            log.warning(
                "uds source %s: SO_RCVBUF is %d bytes, below the configured %d: the kernel caps "
                "it at net.core.rmem_max; raise that (sysctl -w net.core.rmem_max=%d) or lower "
                "daqdata.hashpipe.receive_buffer_bytes",
                dp,
                got,
                want,
                want,
            )

    @staticmethod
    def _remove_stale(where: str, path: str) -> None:
        """Unlink a leftover socket file; refuse anything else, or a socket someone serves."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise SourceError(f"{where}: {exc.strerror}") from exc
        if not stat.S_ISSOCK(st.st_mode):
            raise SourceError(f"{where} exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
            except OSError:
                pass  # nobody listens: stale
            else:
                raise SourceError(f"{where} is in use by another running server; stop it first")
        try:
            os.unlink(path)
        except OSError as exc:
            raise SourceError(f"{where}: cannot remove stale socket: {exc.strerror}") from exc

    def close(self) -> None:
        """Close the sockets; unlink only the socket files this listener created."""
        for dp_name, sock in self._socks.items():
            sock.close()
            ino = self._bound.get(dp_name)
            path = self._paths.get(dp_name)
            if ino is not None and path is not None:
                with contextlib.suppress(OSError):
                    if os.stat(path).st_ino == ino:
                        os.unlink(path)
        self._socks.clear()
        self._bound.clear()

    async def run(self, sink: FrameSink, ready: asyncio.Event) -> None:
        """Accept and read connections until cancelled (opening the sockets first if needed)."""
        self.open()
        readers: set[asyncio.Task[None]] = set()
        try:
            async with asyncio.TaskGroup() as tg:
                for dp in self._dps:
                    tg.create_task(self._accept_loop(dp, self._socks[dp.name], sink, readers))
                ready.set()
        finally:
            for task in readers:
                task.cancel()
            if readers:
                await asyncio.gather(*readers, return_exceptions=True)

    async def _accept_loop(
        self,
        dp: DataProduct,
        sock: socket.socket,
        sink: FrameSink,
        readers: set[asyncio.Task[None]],
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as exc:
                # EMFILE and friends: keep the socket, back off instead of spinning.
                log.warning("uds source %s: accept failed: %s", dp, exc)
                self.stats.add("accept_errors")
                await asyncio.sleep(1.0)
                continue
            self._conn_ids += 1
            self.stats.add("connections")
            task = asyncio.create_task(self._read_loop(dp, conn, self._conn_ids, sink))
            readers.add(task)
            task.add_done_callback(readers.discard)

    async def _read_loop(
        self, dp: DataProduct, conn: socket.socket, conn_id: int, sink: FrameSink
    ) -> None:
        loop = asyncio.get_running_loop()
        state = _Connection(dp, conn_id, self.stats)
        log.info("%s: producer connected", state.label)
        reason = "end of stream"
        try:
            conn.setblocking(False)
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.cfg.receive_buffer_bytes)
            while True:
                try:
                    data = await loop.sock_recv(conn, RECV_BYTES)
                except OSError as exc:
                    reason = exc.strerror or str(exc)
                    break
                if not data:
                    break
                frames = state.framer.feed(data)
                self._log_drops(state, bool(frames))
                for module, header, pixels in frames:
                    self._deliver(sink, dp, module, header, pixels)
        finally:
            conn.close()
            self.stats.add("disconnections")
            log.info(
                "%s: closed (%s); %s",
                state.label,
                reason,
                format_counts(state.framer.stats.snapshot()),
            )

    def _deliver(
        self, sink: FrameSink, dp: DataProduct, module: int, header: dict[str, Any], pixels: bytes
    ) -> None:
        key = (module, dp.name)
        number = self._frame_numbers.get(key, 0)
        self._frame_numbers[key] = number + 1
        frame = Frame(module, dp, header, pixels, f"uds_{dp.name}", number, time.time_ns())
        deliver(sink, frame, self.stats, log)

    @staticmethod
    def _log_drops(state: _Connection, emitted: bool) -> None:
        """One warning when a burst of drops starts, one info line when frames flow again."""
        drops = state.framer.drops
        if not state.in_burst and drops > state.burst_start_drops:
            state.in_burst = True
            log.warning(
                "%s: dropping bad bytes (%s); resynchronising on the next frame start",
                state.label,
                state.framer.last_reason,
            )
        if state.in_burst and emitted:
            state.in_burst = False
            log.info(
                "%s: resynchronised after %d drop(s); %s",
                state.label,
                drops - state.burst_start_drops,
                format_counts(state.framer.stats.snapshot()),
            )
            state.burst_start_drops = drops
