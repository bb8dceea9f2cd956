"""Descriptors systemd passed at start: socket-unit listeners and the service's fd store.

Read once, first thing in the process (`entry`), before anything heavy is imported, because a
restarted DaqData takes its Hashpipe producers back from here. Each consumer then claims what is
its own (by bound address, by FileDescriptorName, or by a name prefix for stored descriptors);
`close_unclaimed` closes the rest and says so, so a socket unit that passes something the
configuration does not use shows up in the log instead of holding a port nobody serves.

Import-light on purpose: only the standard library and systemd.daemon.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat

from systemd import daemon

SockAddress = str | bytes | tuple[object, ...] | None


class Passed:
    """One inherited descriptor and what it is: kind "listening", "connected" or "file".

    A plain class, not a dataclass: this module is imported before anything else in a restarted
    daemon, and dataclasses (with inspect and typing) would add about 7 ms to that.
    """

    __slots__ = ("address", "claimed", "family", "fd", "kind", "name")

    def __init__(
        self,
        fd: int,
        name: str,
        kind: str,
        family: int | None = None,
        address: SockAddress = None,
    ) -> None:
        self.fd = fd
        self.name = name
        self.kind = kind
        self.family = family
        self.address = address
        self.claimed = False

    def describe(self) -> str:
        where = f" {self.address!r}" if self.address not in (None, "", b"") else ""
        return f"fd {self.fd} ({self.kind}{where}, FileDescriptorName={self.name})"


def inspect_fd(fd: int, name: str) -> Passed:
    """What the descriptor `fd` is (a listening or connected socket, or another file)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return Passed(fd, name, "file")
    if not stat.S_ISSOCK(mode):
        return Passed(fd, name, "file")
    # socket(fileno=) reads family and type from the descriptor; detach so it stays open.
    probe = socket.socket(fileno=fd)
    try:
        listening = probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) != 0
        try:
            address: SockAddress = probe.getsockname()
        except OSError:
            address = None
        return Passed(fd, name, "listening" if listening else "connected", probe.family, address)
    finally:
        probe.detach()


class Inherited:
    """The descriptors passed to this process, each claimed at most once."""

    def __init__(self, passed: list[Passed] | None = None) -> None:
        self.passed = list(passed or [])

    @classmethod
    def from_environment(cls) -> Inherited:
        """Take LISTEN_FDS/LISTEN_FDNAMES (then unset them, so children never adopt ours).

        sd_listen_fds_with_names(3) checks LISTEN_PID and marks every descriptor close-on-exec.
        """
        names = daemon.listen_fds_with_names(unset_environment=True)
        for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(var, None)  # the C call unsets the C environment, not this copy
        return cls([inspect_fd(fd, name or "unknown") for fd, name in sorted(names.items())])

    def unclaimed(self, kind: str | None = None) -> list[Passed]:
        return [p for p in self.passed if not p.claimed and (kind is None or p.kind == kind)]

    def named(self, prefix: str) -> list[Passed]:
        """Unclaimed descriptors whose FileDescriptorName starts with `prefix`."""
        return [p for p in self.unclaimed() if p.name.startswith(prefix)]

    def claim_socket(self, passed: Passed) -> socket.socket:
        """Own `passed` as a socket object (its family and type read from the descriptor)."""
        self._claim(passed)
        return socket.socket(fileno=passed.fd)

    def claim_fd(self, passed: Passed) -> int:
        """Own `passed` as a raw descriptor; the caller closes it."""
        self._claim(passed)
        return passed.fd

    def _claim(self, passed: Passed) -> None:
        if passed.claimed:
            raise ValueError(f"{passed.describe()} was already claimed")
        passed.claimed = True

    def close_unclaimed(self) -> list[Passed]:
        """Close every descriptor nobody claimed; returns them for the caller to report."""
        left = self.unclaimed()
        for passed in left:
            passed.claimed = True
            with contextlib.suppress(OSError):
                os.close(passed.fd)
        return left
