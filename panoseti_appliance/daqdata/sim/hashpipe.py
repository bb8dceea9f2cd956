"""The uds simulator: a faithful emulator of Hashpipe's snapshot producer (docs/simulator.md).

For every configured data product it connects lazily to `socket_template.format(dp=…)` once the
path exists, and sends each frame as one `sendmsg` of [be16(module), JSON header in the socket
layout, b"\\n\\n*", pixels] on a non-blocking socket, exactly as Hashpipe's `writev`:
- EAGAIN drops the whole frame ("busy"); the daemon being slow never slows the producer;
- EPIPE, ECONNRESET, ECONNREFUSED, ENOENT close the socket; it reconnects on the next frame;
- a short write counts as success and the rest of the frame is never sent (a torn frame);
- a connection with no successful write for `idle_reconnect_seconds` is closed and reopened.
`HashpipeFaults` injects the faults tests need to exercise the daemon's reader deterministically.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from panoseti_appliance import pff
from panoseti_appliance.daqdata.sim.base import SENT, SimStats
from panoseti_appliance.products import DataProduct

log = logging.getLogger(__name__)

#: Hashpipe closes a connection that had no successful write for this long (checked every 5 s).
IDLE_RECONNECT_SECONDS = 15.0
#: Errors after which Hashpipe closes the socket and reconnects on the next frame.
_RECONNECT_ERRNOS = frozenset(
    {errno.EPIPE, errno.ECONNRESET, errno.ECONNREFUSED, errno.ENOENT, errno.ENOTCONN}
)


@dataclass(frozen=True)
class HashpipeFaults:
    """Test-only fault injection; the defaults behave exactly like Hashpipe.

    tear_every: every N-th frame per dp is torn: only `tear_bytes` of it are sent (0 = never).
    drop_every: every N-th frame per dp is silently not sent (0 = never).
    idle_reconnect_seconds: reconnect after this long without a successful write.
    """

    tear_every: int = 0
    tear_bytes: int = 100
    drop_every: int = 0
    idle_reconnect_seconds: float = IDLE_RECONNECT_SECONDS

    def __post_init__(self) -> None:
        for name in ("tear_every", "tear_bytes", "drop_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"HashpipeFaults.{name} must be >= 0")
        if self.idle_reconnect_seconds <= 0:
            raise ValueError("HashpipeFaults.idle_reconnect_seconds must be > 0")


def connect_unix(path: str, timeout: float | None) -> socket.socket:
    """A stream socket connected to the Unix socket at `path`, with `timeout` (0.0: non-blocking,
    as Hashpipe's); OSError if nothing accepts there, with no socket left open."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


class _Connection:
    """Hashpipe's one non-blocking socket to the daemon for one data product."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock: socket.socket | None = None
        self.last_success = 0.0
        self.frames = 0

    def connect(self) -> bool:
        """Connect if the socket file exists; False (frame dropped) when that is not possible."""
        if not os.path.exists(self.path):
            return False
        try:
            self.sock = connect_unix(self.path, timeout=0.0)
        except OSError:
            return False
        self.last_success = time.monotonic()
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class HashpipeEmitter:
    """Sends frames to the daemon's Hashpipe sockets like Hashpipe's snapshot producer."""

    def __init__(
        self,
        data_products: list[str],
        socket_template: str,
        faults: HashpipeFaults | None = None,
    ) -> None:
        self.faults = faults or HashpipeFaults()
        self.stats = SimStats()
        self._conns = {name: _Connection(socket_template.format(dp=name)) for name in data_products}

    def socket_path(self, dp: str) -> str:
        """Where frames of `dp` go."""
        return self._conns[dp].path

    async def open(self) -> None:
        """Nothing to prepare: Hashpipe connects lazily, when a frame is ready."""

    async def emit(
        self, module_id: int, dp: DataProduct, header: dict[str, Any], pixels: bytes, step: int
    ) -> None:
        conn = self._conns.get(dp.name)
        if conn is None:
            self.stats.add(dp.name, "not_configured")
            return
        self.send(conn, dp, module_id, pff.format_header(dp, header, layout="socket"), pixels)

    def send(
        self, conn: _Connection, dp: DataProduct, module_id: int, header: bytes, pixels: bytes
    ) -> None:
        """One frame, one sendmsg, never blocking; the outcome is counted under `dp`."""
        conn.frames += 1
        faults = self.faults
        if faults.drop_every and conn.frames % faults.drop_every == 0:
            self.stats.add(dp.name, "injected_drops")
            return
        now = time.monotonic()
        if conn.sock is not None and now - conn.last_success > faults.idle_reconnect_seconds:
            conn.close()
            self.stats.add(dp.name, "idle_reconnects")
        if conn.sock is None:
            if not conn.connect():
                self.stats.add(dp.name, "disconnected")
                return
            self.stats.add(dp.name, "connects")
        assert conn.sock is not None
        pieces = [struct.pack(">H", module_id), header, pff.HEADER_END, pixels]
        total = sum(len(p) for p in pieces)
        if faults.tear_every and conn.frames % faults.tear_every == 0:
            pieces = [b"".join(pieces)[: min(faults.tear_bytes, total - 1)]]
            total = -1  # whatever is sent, it is a torn frame
        try:
            sent = conn.sock.sendmsg(pieces)
        except BlockingIOError:
            self.stats.add(dp.name, "busy")
            return
        except OSError as exc:
            if exc.errno not in _RECONNECT_ERRNOS:
                log.warning("uds simulator %s: send failed: %s", conn.path, exc)
            conn.close()
            self.stats.add(dp.name, "send_errors")
            return
        conn.last_success = now
        if sent == total:
            self.stats.add(dp.name, SENT)
        else:
            # Hashpipe treats a short writev as success and sends the next frame straight after.
            self.stats.add(dp.name, "torn")

    async def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
