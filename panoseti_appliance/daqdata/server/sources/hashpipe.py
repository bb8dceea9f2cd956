"""Hashpipe Unix-domain sockets: the production ingestion path (docs/ingestion.md).

Hashpipe connects to one SOCK_STREAM socket per data product and writes, per frame, one writev
of `be16(module) + JSON header + b"\\n\\n*" + pixels` on a non-blocking socket. A short writev is
taken as success by the producer, so the stream can carry torn frames followed directly by the
next frame. `HashpipeFramer` is the sans-I/O parser that validates every frame and resynchronises
on the next frame start; `HashpipeListener` owns the listening sockets (bound here or adopted
from systemd) for the daemon's lifetime, runs one reader per producer connection, and keeps the
connections open across restarts (daqdata.handover).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import json
import logging
import os
import re
import socket
import time
from dataclasses import InitVar, dataclass, field
from typing import Any

from panoseti_appliance.config.models import HashpipeSourceConfig
from panoseti_appliance.daqdata.server.frame import Frame, FrameSink
from panoseti_appliance.daqdata.server.handover import (
    CONN_PREFIX,
    Drain,
    Resumed,
    conn_name,
    new_token,
    save_bytes,
)
from panoseti_appliance.daqdata.server.sources.base import SourceStats, deliver, format_counts
from panoseti_appliance.pff import HEADER_END, MAX_HEADER_BYTES, header_problem
from panoseti_appliance.products import DataProduct, by_name
from panoseti_appliance.runtime.bounded import Throttled
from panoseti_appliance.runtime.inherited import Inherited, Passed
from panoseti_appliance.runtime.listen import ListenError, check_unix_path
from panoseti_appliance.runtime.logs import fields
from panoseti_appliance.runtime.notify import Notifier
from panoseti_appliance.runtime.receive import receive

log = logging.getLogger(__name__)
#: Refused producer connections are logged once a minute per socket, with a count.
refusals = Throttled(log)

#: Where a frame starts: `{`, optional whitespace, `"quabo_` (both header layouts, every dp).
FRAME_MARKER = re.compile(rb'\{\s*"quabo_')
#: The module id prefix: 2 bytes, unsigned big-endian.
MODULE_ID_BYTES = 2
#: How far past the module id the header end may lie.
HEADER_WINDOW = MAX_HEADER_BYTES + len(HEADER_END)
#: Bytes kept while looking for a marker that may be only partly received (longest real marker
#: is 11 bytes; generous for whitespace).
TAIL_KEEP = 64
#: Bytes needed after a frame boundary to tell whether the previous frame was torn in its last
#: few bytes (the next frame's marker then straddles the boundary).
STRADDLE_LOOKAHEAD = 16
#: Drop reasons, each counted per connection and per source.
DROP_REASONS = ("bad_start", "no_header_end", "bad_header", "torn", "torn_emitted")
#: One read per turn of the event loop: about three img16 frames. Larger reads let producers that
#: run flat out take the loop from the streams (`bench/bench_daqdata.py --clients 4 --rates 0`:
#: reads of 4, 8, 16 and 64 KiB gave each of 4 snapshot clients about 1 800, 1 280, 770 and 370
#: images/s).
RECV_BYTES = 1 << 13
LISTEN_BACKLOG = 64
#: Linux SO_RCVBUFFORCE (not exported by the socket module): exceeds net.core.rmem_max when
#: the process has CAP_NET_ADMIN.
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
#: accept(2) errors that pass (out of descriptors or memory, an aborted handshake): back off and
#: retry. Any other error means the listening socket itself is broken.
RETRYABLE_ACCEPT_ERRORS = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED, errno.EPROTO}
)


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
    """Sans-I/O parser of one connection's bytes (docs/ingestion.md, "How the reader finds frames").

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

    def pending(self) -> bytes:
        """The bytes received but not yet framed (an incomplete frame, or garbage being skipped)."""
        return bytes(self._buf)

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

    def end(self) -> None:
        """The connection ended: bytes still held are a frame cut short, counted like any
        other torn frame (left uncounted, such a drop would go unseen)."""
        if self._buf:
            self._drop("torn")
            self.stats.add("garbage_bytes", len(self._buf))
            self._buf.clear()
            self._pending = None

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


@dataclass(eq=False)
class _Connection:
    """One producer connection: its socket, framer, counters and hand-over state."""

    dp: DataProduct
    conn_id: int
    parent: InitVar[SourceStats]
    sock: socket.socket
    token: str
    stored: bool
    framer: HashpipeFramer = field(init=False)
    label: str = field(init=False)
    in_burst: bool = field(default=False, init=False)
    burst_start_drops: int = field(default=0, init=False)
    raw: bytearray = field(default_factory=bytearray, init=False)  # read while handing over
    kept: bool = field(default=False, init=False)  # handed to the next process, not closed
    task: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self, parent: SourceStats) -> None:
        self.framer = HashpipeFramer(self.dp, parent)
        self.label = f"uds {self.dp.name} connection #{self.conn_id}"


class HashpipeListener:
    """The Hashpipe sockets, one per configured data product, for the daemon's lifetime.

    `open()` adopts the sockets systemd passed (matched by bound path against the template, or
    by a FileDescriptorName equal to the data product) and binds the others; `run()` accepts any
    number of producer connections and hands every valid frame to the sink with
    `file="uds_<dp>"` and a per-(module, dp) frame number that survives reconnects. Connections
    are kept across restarts through systemd's fd store (see daqdata.handover).
    """

    name = "uds"

    def __init__(
        self,
        cfg: HashpipeSourceConfig,
        notifier: Notifier | None = None,
        drain: Drain | None = None,
    ) -> None:
        self.cfg = cfg
        self.stats = SourceStats()
        self.notifier = notifier or Notifier()
        self._drain = drain
        self._dps = [by_name(n) for n in dict.fromkeys(cfg.data_products)]
        self._socks: dict[str, socket.socket] = {}
        self._paths: dict[str, str] = {}
        self._bound: dict[str, int] = {}  # dp -> inode of the socket file we created
        self._frame_numbers: dict[tuple[int, str], int] = {}
        self._modules_seen: set[tuple[int, str]] = set()
        self._conn_ids = 0
        self._conns: dict[int, _Connection] = {}
        self._handing_over = False

    def paths(self) -> dict[str, str]:
        """Socket path per data product (as configured, or as adopted from systemd)."""
        return dict(self._paths)

    def listening_sockets(self) -> dict[str, socket.socket]:
        """The open listening socket per data product (empty before open / after close)."""
        return dict(self._socks)

    @property
    def producers(self) -> int:
        """Producer connections open now."""
        return len(self._conns)

    def open(self, inherited: Inherited | None = None) -> None:
        """Adopt or bind every configured socket; ListenError names the dp, path and fix."""
        if self._socks:
            return
        try:
            for dp in self._dps:
                passed = self._passed_for(dp, inherited) if inherited is not None else None
                if passed is not None:
                    assert inherited is not None
                    self._adopt(dp, inherited.claim_socket(passed))
                else:
                    self._bind(dp)
        except BaseException:
            self.close()
            raise

    def _path(self, dp: DataProduct) -> str:
        return self.cfg.socket_template.format(dp=dp.name)

    def _passed_for(self, dp: DataProduct, inherited: Inherited) -> Passed | None:
        path = os.path.normpath(self._path(dp))
        for passed in inherited.unclaimed():
            if passed.kind == "file" or passed.name.startswith(CONN_PREFIX):
                continue
            if passed.name == dp.name or (
                isinstance(passed.address, str) and os.path.normpath(passed.address) == path
            ):
                return passed
        return None

    def _adopt(self, dp: DataProduct, sock: socket.socket) -> None:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM or not listening:
            sock.close()
            raise ListenError(
                f"uds source {dp.name}: the socket systemd passed for {dp.name} is not a listening "
                "AF_UNIX stream socket; fix ListenStream= in panoseti-daqdata.socket"
            )
        sock.setblocking(False)
        self._socks[dp.name] = sock
        name = sock.getsockname()
        self._paths[dp.name] = name if isinstance(name, str) else repr(name)
        log.info(
            "uds source %s: adopted listening socket %s from systemd",
            dp,
            self._paths[dp.name],
            extra=fields(dp=dp.name),
        )

    def _bind(self, dp: DataProduct) -> None:
        path = self._path(dp)
        where = f"uds source {dp.name}: {path}"
        check_unix_path(path, f"uds source {dp.name} (daqdata.hashpipe.socket_template)")
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
                    raise ListenError(
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
            raise ListenError(f"{where}: {exc.strerror or exc}; choose another path") from exc
        log.info(
            "uds source %s: listening on %s (mode %o)",
            dp,
            path,
            self.cfg.socket_mode,
            extra=fields(dp=dp.name),
        )

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

    def wedged(self) -> str | None:
        """Why a Hashpipe socket can no longer take producers (a closed listener), or None."""
        for dp_name, sock in self._socks.items():
            if sock.fileno() == -1:
                return f"the Hashpipe socket for {dp_name} ({self._paths.get(dp_name)}) is closed"
        return None

    def close(self) -> None:
        """Close every connection and socket; unlink only the socket files this listener created."""
        for conn in list(self._conns.values()):
            if conn.task is not None:
                conn.task.cancel()
            if not conn.kept:
                conn.sock.close()
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

    # ---- serving ----------------------------------------------------------------------------

    async def run(self, sink: FrameSink, ready: asyncio.Event | None = None) -> None:
        """Accept producer connections on every socket until cancelled (`ready` set once on).

        Opens the sockets first if `open()` was not called. Connections taken back from the
        previous process (the drain) are resumed first. An accept error that retrying cannot fix
        ends this task (its supervisor restarts it, and a socket that stays broken ends the
        daemon so systemd can hand it fresh ones).
        """
        self.open()
        if self._drain is not None:
            drain, self._drain = self._drain, None
            for resumed in drain.take():
                self._resume(resumed, sink, drain.began_after)
        async with asyncio.TaskGroup() as tg:
            for dp in self._dps:
                tg.create_task(self._accept_loop(dp, self._socks[dp.name], sink))
            if ready is not None:
                ready.set()

    def _resume(self, resumed: Resumed, sink: FrameSink, began_after: float) -> None:
        dp = next((d for d in self._dps if d.name == resumed.dp), None)
        if dp is None:
            log.warning(
                "dropping a stored producer connection for %s: not a configured data product",
                resumed.dp,
            )
            resumed.sock.close()
            self.notifier.remove_fd(conn_name(resumed.dp, resumed.token))
            return
        conn = self._track(dp, resumed.sock, resumed.token, stored=True)
        self.stats.add("resumed")
        log.info(
            "%s: resumed from the previous process (%d bytes waiting; read again %.0f ms "
            "after exec)",
            conn.label,
            len(resumed.data),
            began_after * 1000,
            extra=fields(dp=dp.name),
        )
        conn.task = asyncio.create_task(
            self._read_loop(conn, sink, bytes(resumed.data), resumed.ended),
            name=conn.label,
        )

    def _track(self, dp: DataProduct, sock: socket.socket, token: str, stored: bool) -> _Connection:
        self._conn_ids += 1
        conn = _Connection(dp, self._conn_ids, self.stats, sock, token, stored)
        self._conns[self._conn_ids] = conn
        return conn

    async def _accept_loop(self, dp: DataProduct, sock: socket.socket, sink: FrameSink) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock_conn, _ = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno not in RETRYABLE_ACCEPT_ERRORS:
                    raise
                # Out of descriptors or memory: keep the socket, back off instead of spinning.
                log.warning("uds source %s: accept failed: %s", dp, exc, extra=fields(dp=dp.name))
                self.stats.add("accept_errors")
                await asyncio.sleep(1.0)
                continue
            if self._connections_of(dp) >= self.cfg.max_connections_per_socket:
                self._refuse(dp, sock_conn)
                continue
            token = new_token()
            stored = self.notifier.store_fd(sock_conn.fileno(), conn_name(dp.name, token))
            conn = self._track(dp, sock_conn, token, stored)
            self.stats.add("connections")
            log.info("%s: producer connected", conn.label, extra=fields(dp=dp.name))
            conn.task = asyncio.create_task(self._read_loop(conn, sink), name=conn.label)

    def _connections_of(self, dp: DataProduct) -> int:
        return sum(1 for c in self._conns.values() if c.dp.name == dp.name)

    def _refuse(self, dp: DataProduct, sock: socket.socket) -> None:
        """Close a connection beyond daqdata.hashpipe.max_connections_per_socket at once: a
        runaway or hostile local process must not take every descriptor from the producers."""
        sock.close()
        self.stats.add("refused_connections")
        refusals.warning(
            f"connections {dp.name}",
            "uds source %s: refused a producer connection: %d already open, the most "
            "daqdata.hashpipe.max_connections_per_socket allows; raise it if this producer is "
            "legitimate",
            dp,
            self.cfg.max_connections_per_socket,
        )

    async def _read_loop(
        self, conn: _Connection, sink: FrameSink, first: bytes = b"", ended: bool = False
    ) -> None:
        dp = conn.dp
        reason = "end of stream"
        try:
            conn.sock.setblocking(False)
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_RCVBUF, self.cfg.receive_buffer_bytes
                )
            data = first
            while data or not ended:
                if data:
                    if self._handing_over:
                        conn.raw += data
                    else:
                        self._consume(conn, data, sink)
                if ended:
                    break
                try:
                    data = await receive(conn.sock, RECV_BYTES)
                except OSError as exc:
                    reason = exc.strerror or str(exc)
                    break
                ended = not data
        except asyncio.CancelledError:
            conn.kept = self._handing_over and conn.stored
            raise
        except Exception as exc:
            reason = f"reader failed: {exc!r}"
            log.exception("%s: reader failed", conn.label, extra=fields(dp=dp.name))
        finally:
            self._conns = {k: c for k, c in self._conns.items() if c is not conn}
            if not conn.kept:
                conn.framer.end()
                conn.sock.close()
                if conn.stored:
                    self.notifier.remove_fd(conn_name(dp.name, conn.token))
                self.stats.add("disconnections")
                log.info(
                    "%s: closed (%s); %s",
                    conn.label,
                    reason,
                    format_counts(conn.framer.stats.snapshot()),
                    extra=fields(dp=dp.name),
                )

    def _consume(self, conn: _Connection, data: bytes, sink: FrameSink) -> None:
        frames = conn.framer.feed(data)
        self._log_drops(conn, bool(frames))
        for module, header, pixels in frames:
            self._deliver(sink, conn.dp, module, header, pixels)

    def _deliver(
        self, sink: FrameSink, dp: DataProduct, module: int, header: dict[str, Any], pixels: bytes
    ) -> None:
        key = (module, dp.name)
        number = self._frame_numbers.get(key, 0)
        self._frame_numbers[key] = number + 1
        if key not in self._modules_seen:
            self._modules_seen.add(key)
            log.info(
                "uds source %s: first frame from module %d",
                dp,
                module,
                extra=fields(module=module, dp=dp.name),
            )
        frame = Frame(module, dp, header, pixels, f"uds_{dp.name}", number, time.time_ns())
        deliver(sink, frame, self.stats, log)

    # ---- restart hand-over ------------------------------------------------------------------

    def begin_handover(self) -> None:
        """From now on read producers raw, without framing: what follows goes to the next
        process (the daemon is stopping and no longer publishes)."""
        self._handing_over = True

    async def handover(self) -> None:
        """Stop reading; leave every stored connection, and what was read of it but not framed,
        in systemd's fd store for the next process. Unstored connections are closed."""
        self._handing_over = True
        conns = list(self._conns.values())
        tasks = [c.task for c in conns if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        kept = 0
        for conn in conns:
            if not conn.kept:
                continue
            ended = _read_available(conn.sock, conn.raw)
            data = conn.framer.pending() + bytes(conn.raw)
            if ended:
                self.notifier.remove_fd(conn_name(conn.dp.name, conn.token))
            elif data:
                save_bytes(self.notifier, conn.dp.name, conn.token, data)
            conn.sock.close()
            kept += 0 if ended else 1
        if kept:
            log.info("handed %d producer connection(s) to the next process", kept)

    @staticmethod
    def _log_drops(state: _Connection, emitted: bool) -> None:
        """One warning when a burst of drops starts, one info line when frames flow again."""
        drops = state.framer.drops
        dp = fields(dp=state.dp.name)
        if not state.in_burst and drops > state.burst_start_drops:
            state.in_burst = True
            log.warning(
                "%s: dropping bad bytes (%s); resynchronising on the next frame start",
                state.label,
                state.framer.last_reason,
                extra=dp,
            )
        if state.in_burst and emitted:
            state.in_burst = False
            log.info(
                "%s: resynchronised after %d drop(s); %s",
                state.label,
                drops - state.burst_start_drops,
                format_counts(state.framer.stats.snapshot()),
                extra=dp,
            )
            state.burst_start_drops = drops


def _read_available(sock: socket.socket, into: bytearray) -> bool:
    """Append what the socket holds now without waiting; True if the producer closed it."""
    while True:
        try:
            chunk = sock.recv(RECV_BYTES)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if not chunk:
            return True
        into += chunk
