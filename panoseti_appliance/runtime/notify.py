"""sd_notify(3) for the daemons: READY, STATUS, STOPPING, the watchdog and the fd store.

Every call goes through systemd.daemon.notify and is a no-op without NOTIFY_SOCKET, so the
daemons call them unconditionally and behave the same with or without systemd. Import-light (a
restarted daemon uses it before anything else is loaded): logging is imported only to warn.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from systemd import daemon


class Notifier:
    """Tells systemd we are ready, what we are doing, that we are alive; keeps fds for us."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.enabled = bool(env.get("NOTIFY_SOCKET"))
        self._warned = False

    def notify(self, *assignments: str, fds: Sequence[int] = ()) -> bool:
        """Send one message of newline-separated VAR=value assignments; False if not sent.

        A lost status line must never stop a daemon, so a failure is logged once, not raised
        (systemd restarts a daemon whose watchdog pings stop).
        """
        if not self.enabled:
            return False
        try:
            return bool(daemon.notify("\n".join(assignments), fds=list(fds)))
        except OSError as exc:
            if not self._warned:
                import logging

                logging.getLogger(__name__).warning("sd_notify %s failed: %s", assignments[0], exc)
                self._warned = True
            return False

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def store_fd(self, fd: int, name: str) -> bool:
        """Keep a duplicate of `fd` in systemd's fd store under `name` (FileDescriptorStoreMax=)."""
        return self.notify("FDSTORE=1", f"FDNAME={name}", fds=[fd])

    def remove_fd(self, name: str) -> bool:
        """Drop every stored descriptor named `name` (systemd closes its copies)."""
        return self.notify("FDSTOREREMOVE=1", f"FDNAME={name}")


def watchdog_period(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings: half of WATCHDOG_USEC, or None without a watchdog.

    None also when WATCHDOG_PID names another process or the value is not a positive integer.
    (systemd-python has no sd_watchdog_enabled(3) binding, hence these few lines.)
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "").strip()
    pid = env.get("WATCHDOG_PID", "").strip()
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    if not usec.isdigit() or int(usec) == 0:
        return None
    return int(usec) / 2e6
