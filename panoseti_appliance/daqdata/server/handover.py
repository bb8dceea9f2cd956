"""Hashpipe producer connections kept open across daemon restarts (systemd's fd store).

A restart must never close a producer's connection, nor leave it unread for long: Hashpipe writes
non-blocking and drops every frame its socket cannot take, and the only buffer of an AF_UNIX
stream is the sender's SO_SNDBUF (the receiver's SO_RCVBUF does not count), about 49 img16 frames
at Hashpipe's default, i.e. 49 ms at 1 kHz. So:

- at accept, the listener stores each connection (FDSTORE=1, FDNAME=`hpconn.<dp>.<token>`);
- when the daemon stops, it reads every connection to the very end, raw, and stores what it read
  but did not frame as a memfd (FDNAME=`hpdata.<dp>.<token>`);
- the next process, first thing and before its heavy imports, takes both back and `Drain`s the
  connections on a thread until the listener is ready to frame them.
A connection that ends is removed from the store (FDSTOREREMOVE=1). After a crash there is no
memfd: the new process starts reading mid-frame and the framer resynchronises, losing at most the
frame that was being read. Without NOTIFY_SOCKET nothing is stored and a restart closes
connections, as a daemon without systemd always did.

Import-light on purpose (a few standard modules and systemd.daemon; no logging, dataclasses or
secrets, measured at 15 ms together): `runtime.entry` uses it before anything heavy is loaded.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time

from panoseti_appliance.runtime.inherited import Inherited
from panoseti_appliance.runtime.notify import Notifier

CONN_PREFIX = "hpconn."
DATA_PREFIX = "hpdata."
#: Most bytes drained per connection while the daemon starts; beyond it the producer's own
#: buffer takes the back-pressure (about 25 s of img16 at 1 kHz).
MAX_DRAIN_BYTES = 64 << 20
POLL_MS = 20
RECV_BYTES = 1 << 16


def new_token() -> str:
    """A name part no other stored connection has (48 random bits)."""
    return os.urandom(6).hex()


def conn_name(dp: str, token: str) -> str:
    return f"{CONN_PREFIX}{dp}.{token}"


def data_name(dp: str, token: str) -> str:
    return f"{DATA_PREFIX}{dp}.{token}"


def split_name(name: str) -> tuple[str, str] | None:
    """(dp, token) of a stored connection's or memfd's FDNAME, else None."""
    for prefix in (CONN_PREFIX, DATA_PREFIX):
        if name.startswith(prefix):
            dp, sep, token = name[len(prefix) :].partition(".")
            if sep and dp and token:
                return dp, token
    return None


def save_bytes(notifier: Notifier, dp: str, token: str, data: bytes) -> bool:
    """Store `data` for the next process as a memfd named `hpdata.<dp>.<token>`."""
    fd = os.memfd_create(data_name(dp, token), os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        return notifier.store_fd(fd, data_name(dp, token))
    finally:
        os.close(fd)  # systemd holds its own copy


def seconds_since_exec() -> float:
    """How long this process has existed (its start time in /proc/self/stat)."""
    with open("/proc/self/stat") as f:
        started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    return time.clock_gettime(time.CLOCK_BOOTTIME) - started_ticks / os.sysconf("SC_CLK_TCK")


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


class Resumed:
    """A producer connection taken back from the fd store, with the bytes to frame first."""

    __slots__ = ("data", "dp", "ended", "sock", "token")

    def __init__(self, dp: str, token: str, sock: socket.socket, data: bytes = b"") -> None:
        self.dp = dp
        self.token = token
        self.sock = sock
        self.data = bytearray(data)
        self.ended = False  # the producer closed it meanwhile


class Drain:
    """Reads resumed producer connections on a thread until the listener takes them."""

    def __init__(self, resumed: list[Resumed]) -> None:
        self.resumed = resumed
        #: Seconds after exec at which draining began (how long the producers went unread).
        self.began_after = seconds_since_exec() if resumed else 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, inherited: Inherited, notifier: Notifier | None = None) -> Drain:
        """Claim stored connections (and their saved bytes) and start draining them at once."""
        notify = notifier or Notifier()
        saved: dict[str, bytes] = {}
        for passed in inherited.named(DATA_PREFIX):
            parts = split_name(passed.name)
            fd = inherited.claim_fd(passed)
            try:
                if parts is not None:
                    saved[parts[1]] = _read_all(fd)
            finally:
                os.close(fd)
            notify.remove_fd(passed.name)  # now in memory; never replay it twice
        resumed = []
        for passed in inherited.named(CONN_PREFIX):
            parts = split_name(passed.name)
            if parts is None or passed.kind != "connected":
                continue
            dp, token = parts
            sock = inherited.claim_socket(passed)
            sock.setblocking(False)
            resumed.append(Resumed(dp, token, sock, saved.pop(token, b"")))
        drain = cls(resumed)
        if resumed:
            drain._thread = threading.Thread(target=drain._run, name="hashpipe-drain", daemon=True)
            drain._thread.start()
        return drain

    def _run(self) -> None:
        poller = select.poll()
        by_fd = {r.sock.fileno(): r for r in self.resumed}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        while by_fd and not self._stop.is_set():
            for fd, _ in poller.poll(POLL_MS):
                item = by_fd[fd]
                try:
                    chunk = item.sock.recv(RECV_BYTES)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    item.data += chunk
                if not chunk or len(item.data) >= MAX_DRAIN_BYTES:
                    item.ended = not chunk
                    poller.unregister(fd)
                    del by_fd[fd]

    def take(self) -> list[Resumed]:
        """Stop draining and hand over every connection with what was read so far."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        taken, self.resumed = self.resumed, []
        return taken

    def close(self) -> None:
        """Drop connections nobody took (the daemon is not starting after all)."""
        for item in self.take():
            with contextlib.suppress(OSError):
                item.sock.close()
