"""The two halves of systemd's descriptor protocols, for tests that run without PID 1.

- `spawn_with_fds` starts a process the way the service manager does: the given descriptors at
  3, 4, … and LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES set (sd_listen_fds_with_names(3)).
- `NotifyListener` is the other end of NOTIFY_SOCKET: it records every sd_notify(3) message and
  keeps the descriptors sent with FDSTORE=1 under their FDNAME, dropping them on FDSTOREREMOVE=1,
  as the service manager's fd store does. Handing `stored()` to `spawn_with_fds` is what a
  restart does with them.
The tests under tests/system check the same paths against the real systemd.
"""

from __future__ import annotations

import array
import fcntl
import os
import socket
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

LISTEN_FDS_START = 3


def spawn_with_fds(
    argv: Sequence[str],
    fds: Sequence[tuple[int, str]],
    env: Mapping[str, str] | None = None,
    **popen: object,
) -> subprocess.Popen[bytes]:
    """Start `argv` with `fds` (descriptor, FileDescriptorName) passed like socket activation.

    The descriptors are first duplicated above any target number and passed with pass_fds (no
    preexec_fn: the test process has threads), then moved into place by bash, which also sets
    LISTEN_PID to its own pid before exec (so it matches). bash, not sh: dash cannot redirect
    descriptors above 9.
    """
    base = {k: v for k, v in (env if env is not None else os.environ).items()}
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        base.pop(var, None)
    base["LISTEN_FDS"] = str(len(fds))
    base["LISTEN_FDNAMES"] = ":".join(name for _, name in fds)
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd, _ in fds]
    moves = " ".join(f"{LISTEN_FDS_START + i}<&{fd} {fd}<&-" for i, fd in enumerate(high))
    script = f'exec {moves}; LISTEN_PID=$$ exec "$@"'
    try:
        return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
            ["bash", "-c", script, "bash", *argv], env=base, pass_fds=high, **popen
        )
    finally:
        for fd in high:
            os.close(fd)


class NotifyListener:
    """NOTIFY_SOCKET for a daemon under test: its messages, and an fd store."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[dict[str, str]] = []
        self._store: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def env(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.path}

    def _run(self) -> None:
        fd_size = array.array("i").itemsize
        while True:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(64 * fd_size))
            except OSError:
                return
            if self._closed:
                return
            fds: list[int] = []
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    usable = len(payload) - len(payload) % fd_size
                    fds.extend(array.array("i", payload[:usable]))
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self._cond:
                self.messages.append(fields)
                name = fields.get("FDNAME", "stored")
                if fields.get("FDSTORE") == "1":
                    self._store.extend((name, fd) for fd in fds)
                    fds = []
                elif fields.get("FDSTOREREMOVE") == "1":
                    for kept in [e for e in self._store if e[0] == name]:
                        self._store.remove(kept)
                        os.close(kept[1])
                for fd in fds:
                    os.close(fd)
                self._cond.notify_all()

    def wait_for(self, key: str, value: str | None = None, timeout: float = 30.0) -> dict[str, str]:
        """The first message setting `key` (to `value`, if given); waits for it."""

        def found() -> dict[str, str] | None:
            for message in self.messages:
                if key in message and (value is None or message[key] == value):
                    return message
            return None

        with self._cond:
            if not self._cond.wait_for(found, timeout):
                raise TimeoutError(f"no {key}={value or '*'} within {timeout}s: {self.messages}")
            result = found()
            assert result is not None
            return result

    def wait_stored(self, prefix: str, timeout: float = 30.0) -> list[str]:
        """Wait until a descriptor whose FDNAME starts with `prefix` is in the store; the names.

        The sender may have exited already: its last messages can still be on their way here.
        """
        with self._cond:
            if not self._cond.wait_for(
                lambda: any(name.startswith(prefix) for name, _ in self._store), timeout
            ):
                raise TimeoutError(f"nothing named {prefix}* stored within {timeout}s")
            return [name for name, _ in self._store]

    def stored(self) -> list[tuple[int, str]]:
        """(descriptor, FDNAME) of everything in the store now, as a restart would pass it."""
        with self._lock:
            return [(fd, name) for name, fd in self._store]

    def close(self) -> None:
        self._closed = True
        # shutdown() wakes the thread blocked in recvmsg(); close() alone would not.
        self.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self.sock.close()
        with self._lock:
            for _, fd in self._store:
                os.close(fd)
            self._store.clear()
