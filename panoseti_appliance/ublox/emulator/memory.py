"""The emulated ZED-F9T in the daemon's own process, reached through an in-memory transport.

`MemoryReceiver` is the same `F9tReceiver` as the pty emulator (the same answers, epochs,
register store and fault hooks); only the carrier differs. `MemoryReceiver.factory` is a
`TransportFactory` (ublox/server/transport.py): the daemon's link opens a `MemoryTransport`
instead of a serial port, and the bytes it writes reach the receiver directly while the
receiver's output waits in the transport until the link reads it. There is no device node: any
device name opens the receiver, and `MemoryReceiver.stat` (the matching `DeviceStat`) reports a
character device while the receiver is plugged in and ENOENT after `unplug()`.

Use it to drive the servicer in process or without a tty; use the pty emulator to test the
serial path itself (docs/emulator.md, "In memory").
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
import time
from typing import Unpack

from panoseti_appliance.ublox.emulator.device import F9tReceiver, ReceiverOptions
from panoseti_appliance.ublox.server.transport import READ_TIMEOUT_S
from panoseti_appliance.ublox.ubxframes import FrameSplitter

log = logging.getLogger(__name__)

#: Most bytes held for a host that does not read; further output is dropped, as the pty drops it
#: once its buffer is full and a real receiver drops what nobody collects.
MAX_BUFFERED = 65536
#: What `stat` reports while plugged in: a character device, read-write for owner and group.
NODE_MODE = stat.S_IFCHR | 0o660


def _error(code: int, device: str, why: str = "") -> OSError:
    text = os.strerror(code) + (f" ({why})" if why else "")
    return OSError(code, text, device)


class MemoryTransport:
    """The host's end of a `MemoryReceiver`: a `Transport` whose device errors are OSErrors."""

    device_errors: tuple[type[BaseException], ...] = (OSError,)

    def __init__(self, receiver: MemoryReceiver, device: str) -> None:
        self.device = device
        self._receiver = receiver
        self._cond = receiver._cond  # guards everything below
        self._inbox = bytearray()
        self._splitter = FrameSplitter()
        self._open = False
        self._gone = False  # the receiver was unplugged while this end was open
        self._cancelled = False

    def _check(self) -> None:
        """Raise like a vanished device, or like a closed port; call with the lock held."""
        if self._gone:
            raise _error(errno.EIO, self.device, "receiver unplugged")
        if not self._open:
            raise _error(errno.EBADF, self.device, "port not open")

    def open(self) -> None:
        with self._cond:
            self._receiver._attach(self)
            self._inbox.clear()
            self._splitter = FrameSplitter()
            self._open, self._gone, self._cancelled = True, False, False

    def close(self) -> None:
        with self._cond:
            self._receiver._detach(self)
            self._open = False
            self._cond.notify_all()

    @property
    def in_waiting(self) -> int:
        with self._cond:
            self._check()
            return len(self._inbox)

    def read(self, size: int) -> bytes:
        deadline = time.monotonic() + READ_TIMEOUT_S
        with self._cond:
            while True:
                self._check()
                if self._cancelled:
                    self._cancelled = False
                    return b""
                if self._inbox:
                    data = bytes(self._inbox[:size])
                    del self._inbox[:size]
                    return data
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b""
                self._cond.wait(remaining)

    def write(self, data: bytes) -> None:
        """Hand the receiver every whole frame in `data`; its answers arrive in this inbox.

        Runs the receiver's answer in the caller's thread (the link's writer), as the pty
        emulator runs it in its RX thread, so `reply_delay_s` holds this write back.
        """
        with self._cond:
            self._check()
        for frame in self._splitter.feed(data):
            self._receiver._handle(frame)

    def cancel_read(self) -> None:
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    def _deliver(self, data: bytes) -> None:
        """Receiver output for this end; dropped if the host lets it pile up. Lock held."""
        if len(self._inbox) + len(data) <= MAX_BUFFERED:
            self._inbox += data
            self._cond.notify_all()


class MemoryReceiver(F9tReceiver):
    """The emulated receiver without a pty; `factory` and `stat` plug it into the daemon.

    One host at a time, as the daemon opens the serial port exclusively: a second open while one
    transport is open fails with EBUSY.
    """

    def __init__(self, **options: Unpack[ReceiverOptions]) -> None:
        super().__init__(**options)
        self._cond = threading.Condition()
        self._plugged = True
        self._host: MemoryTransport | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the epoch thread (the receiver answers polls from the moment it exists)."""
        if self._thread is not None:
            raise RuntimeError("receiver already started")
        self._thread = threading.Thread(target=self._epoch_loop, name="f9t-mem-epoch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the epoch thread and power off: an open transport then fails like an unplug."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pull_cable()

    # -- what the daemon is given ------------------------------------------------------------

    def factory(self, device: str, baud: int) -> MemoryTransport:
        """A `TransportFactory`: an unopened transport to this receiver, whatever the name."""
        return MemoryTransport(self, device)

    def stat(self, device: str) -> int:
        """A `DeviceStat`: a character device while plugged in, FileNotFoundError after unplug."""
        with self._cond:
            if self._plugged:
                return NODE_MODE
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), device)

    # -- unplug and re-plug ------------------------------------------------------------------

    @property
    def plugged(self) -> bool:
        with self._cond:
            return self._plugged

    def unplug(self) -> None:
        """Vanish like a USB unplug: the open transport's reads and writes raise OSError (EIO),
        opening fails with ENOENT and `stat` says the node is gone."""
        self._pull_cable()
        log.info("unplugged the in-memory receiver")

    def replug(self) -> None:
        """Come back power-cycled, like the pty emulator's `replug()`: RAM is rebuilt from FLASH
        and BBR, so the daemon re-runs its InitF9t plan once it has re-opened the receiver."""
        self._pull_cable()
        self.store.power_cycle()
        with self._cond:
            self._plugged = True
        log.info("re-plugged the in-memory receiver")

    def _pull_cable(self) -> None:
        with self._cond:
            self._plugged = False
            host, self._host = self._host, None
            if host is not None:
                host._gone = True
            self._cond.notify_all()

    # -- the carrier -------------------------------------------------------------------------

    def _attach(self, host: MemoryTransport) -> None:
        """Make `host` the open end; lock held (MemoryTransport.open)."""
        if not self._plugged:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), host.device)
        if self._host is not None and self._host is not host:
            raise _error(errno.EBUSY, host.device, "opened by another host")
        self._host = host

    def _detach(self, host: MemoryTransport) -> None:
        """Forget `host` if it is the open end; lock held (MemoryTransport.close)."""
        if self._host is host:
            self._host = None

    def _transmit(self, data: bytes) -> None:
        with self._cond:
            if self._host is not None:
                self._host._deliver(data)
