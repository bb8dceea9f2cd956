"""Bounded error texts and log lines for whatever a client sent.

A status message that echoes a whole request can exceed gRPC's metadata limit (the client then
sees RESOURCE_EXHAUSTED instead of the real status), and a log line that does the same turns one
hostile request into megabytes of journal. Every text built from client input goes through
`quote` (a prefix of the value) or `bounded` (a prefix of the whole message); repeated bad
requests of one kind are logged through `Throttled`, one line per interval with a count.
"""

from __future__ import annotations

import logging
import threading
import time

#: Most characters of one client-supplied value quoted in a message.
QUOTE_CHARS = 80
#: Most characters of a status message (well under gRPC's 8 KiB default metadata limit).
MESSAGE_CHARS = 1024


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """`repr(value)`, cut to `limit` characters with how long it was."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def bounded(message: str, limit: int = MESSAGE_CHARS) -> str:
    """`message` cut to `limit` characters, saying so."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}… (message cut, {len(message)} characters)"


class Throttled:
    """One log line per kind of event per interval, with how many were not logged since."""

    def __init__(self, log: logging.Logger, interval_s: float = 60.0) -> None:
        self.log = log
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: object) -> bool:
        """Log `message % args` at WARNING unless `kind` was logged within the interval; True
        if it was logged."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval_s:
                self._quiet[kind] = self._quiet.get(kind, 0) + 1
                return False
            self._last[kind] = now
            quiet = self._quiet.pop(kind, 0)
        suffix = f" ({quiet} more of this kind not logged in the last {self.interval_s:g} s)"
        self.log.warning(bounded(message % args) + (suffix if quiet else ""))
        return True
