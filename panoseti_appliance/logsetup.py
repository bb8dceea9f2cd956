"""Logging set-up shared by both daemons: journald under systemd, plain text on stderr otherwise.

Under systemd a line written to stderr loses its level (everything becomes "info" in the
journal), so when the daemon's stderr *is* the journal we log to journald natively instead and keep
the priority, the logger name and the program as SYSLOG_IDENTIFIER.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from panoseti_appliance.config.models import LoggingConfig

#: The stderr format; the journal adds its own timestamp and identifier.
STDERR_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"


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
