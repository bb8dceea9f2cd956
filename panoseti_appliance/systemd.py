"""The small parts of the systemd protocol both daemons use: socket activation, sd_notify, watchdog.

Implemented directly on the documented environment variables and the notify datagram socket, so
the daemons behave identically with or without systemd: outside systemd every call is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, MutableMapping

log = logging.getLogger(__name__)

#: The first inherited file descriptor (SD_LISTEN_FDS_START).
LISTEN_FDS_START = 3
_LISTEN_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def listen_fds(environ: MutableMapping[str, str] | None = None) -> dict[str, list[socket.socket]]:
    """Sockets passed by systemd socket activation, grouped by FileDescriptorName.

    Returns {} when the variables are absent or meant for another process (LISTEN_PID). The
    variables are removed either way so child processes do not adopt our descriptors. Unnamed
    descriptors are grouped under "unknown", systemd's default name.
    """
    env = os.environ if environ is None else environ
    pid, count, names = (env.pop(var, None) for var in _LISTEN_VARS)
    if pid is None or count is None:
        return {}
    if not pid.strip().isdigit() or int(pid) != os.getpid():
        return {}
    if not count.strip().isdigit():
        log.warning("ignoring LISTEN_FDS=%r: not a number", count)
        return {}
    n = int(count)
    labels = names.split(":") if names else []
    result: dict[str, list[socket.socket]] = {}
    for i in range(n):
        fd = LISTEN_FDS_START + i
        os.set_inheritable(fd, False)
        label = labels[i] if i < len(labels) and labels[i] else "unknown"
        result.setdefault(label, []).append(socket.socket(fileno=fd))
    return result


class Notifier:
    """sd_notify(3): tells systemd we are ready, what we are doing, and that we are alive.

    Every method is a no-op when NOTIFY_SOCKET is unset, so daemons call them unconditionally.
    A send failure is logged once and otherwise ignored: losing a status line must never stop
    a daemon (systemd itself restarts one whose watchdog pings stop).
    """

    def __init__(self, address: str | None = None) -> None:
        addr = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self._address: str | bytes | None = None
        if addr:
            # A leading "@" names a socket in the abstract namespace.
            self._address = b"\0" + addr[1:].encode() if addr.startswith("@") else addr
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *assignments: str) -> None:
        """Send one datagram of newline-separated VAR=value assignments."""
        if self._address is None:
            return
        message = "\n".join(assignments).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message, self._address)
        except OSError as exc:
            if not self._warned:
                log.warning("sd_notify to %r failed: %s", self._address, exc)
                self._warned = True

    def ready(self, status: str | None = None) -> None:
        self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_period(environ: MutableMapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings: half of WATCHDOG_USEC, or None without a watchdog.

    None also when WATCHDOG_PID names another process or the value is not a positive integer.
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "").strip()
    pid = env.get("WATCHDOG_PID", "").strip()
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    if not usec.isdigit() or int(usec) == 0:
        return None
    return int(usec) / 2e6


async def run_watchdog(
    notifier: Notifier, period: float, healthy: Callable[[], bool] = lambda: True
) -> None:
    """Ping the watchdog every `period` seconds while `healthy()`, until cancelled.

    The pings come from the event loop itself, so a loop that stalls (or a daemon that reports
    itself unhealthy) stops them and systemd restarts the service.
    """
    while True:
        if healthy():
            notifier.watchdog()
        await asyncio.sleep(period)
