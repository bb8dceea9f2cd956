"""Logging for both daemons: journald with structured fields under systemd, plain text otherwise.

Under systemd a line written to stderr loses its level (everything becomes "info" in the
journal), so when the daemon's stderr *is* the journal we log to journald natively instead and keep
the priority, the logger name, the program as SYSLOG_IDENTIFIER and the fields `fields()` adds to a
record (`journalctl -u panoseti-daqdata DATA_PRODUCT=img16`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from panoseti_appliance.config.models import LoggingConfig

#: The stderr format; the journal adds its own timestamp and identifier.
STDERR_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"
#: syslog(3) LOG_ERR, the journal priority of a start-up failure.
PRIORITY_ERROR = 3


def fields(
    *,
    module: int | None = None,
    dp: object = None,
    peer: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """`extra=` for a log call: journal fields an operator filters on (absent ones omitted).

    The journal keeps upper-case record attributes as fields; the stderr format ignores them.
    """
    out: dict[str, Any] = {}
    if module is not None:
        out["MODULE_ID"] = module
    if dp is not None:
        out["DATA_PRODUCT"] = str(dp)
    if peer is not None:
        out["PEER"] = peer
    if device is not None:
        out["DEVICE"] = device
    return out


def stderr_is_journal(environ: Mapping[str, str] | None = None) -> bool:
    """True when systemd connected our stderr to the journal (JOURNAL_STREAM names it).

    systemd sets JOURNAL_STREAM=<dev>:<inode> of the stream it gave us; a child whose stderr was
    redirected elsewhere inherits the variable, so the device and inode must match fd 2.
    """
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


def report_startup_failure(program: str, text: str) -> None:
    """Say why the daemon cannot start, before logging is configured (a bad config, say).

    Into the journal at error priority when stderr is the journal (one entry, the same text
    `panoseti config check` prints), else onto stderr.
    """
    if stderr_is_journal():
        from systemd import journal

        journal.send(text, PRIORITY=str(PRIORITY_ERROR), SYSLOG_IDENTIFIER=program)
    else:
        print(f"{program}: {text}", file=sys.stderr, flush=True)


def _journal_handler(program: str) -> logging.Handler:
    from systemd.journal import JournalHandler

    handler: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER=program)
    handler.setFormatter(logging.Formatter(JOURNAL_FORMAT))
    return handler


def _stderr_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(STDERR_FORMAT))
    return handler


def setup_logging(cfg: LoggingConfig, program: str) -> None:
    """Configure the root logger once for a daemon or tool named `program`.

    Replaces any handlers installed earlier, so calling it again (e.g. after a config reload)
    does not duplicate lines.
    """
    use_journal = cfg.target == "journald" or (cfg.target == "auto" and stderr_is_journal())
    handler = _journal_handler(program) if use_journal else _stderr_handler()
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(cfg.level.upper())
    logging.captureWarnings(True)
