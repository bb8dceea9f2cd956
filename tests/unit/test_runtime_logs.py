"""Logging set-up: journald or stderr, journal fields, and how a start-up failure is reported."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from panoseti_appliance.config.models import LoggingConfig
from panoseti_appliance.runtime import logs


def test_fields_name_what_operators_filter_on() -> None:
    assert logs.fields(module=3, dp="img16", peer="ipv4:10.0.0.5:4000", device="/dev/ttyACM0") == {
        "MODULE_ID": 3,
        "DATA_PRODUCT": "img16",
        "PEER": "ipv4:10.0.0.5:4000",
        "DEVICE": "/dev/ttyACM0",
    }
    assert logs.fields() == {}


def test_setup_logging_stderr_format(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup_logging(LoggingConfig(level="debug", target="stderr"), "panoseti-test")
    logs.setup_logging(LoggingConfig(level="debug", target="stderr"), "panoseti-test")
    logging.getLogger("panoseti.x").debug("hello %s", "there", extra=logs.fields(module=1))
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1  # set up twice, one handler
    assert err[0].endswith(" DEBUG panoseti.x: hello there")
    assert logging.getLogger().level == logging.DEBUG


def test_setup_logging_journald_target_uses_journal_handler() -> None:
    from systemd.journal import JournalHandler

    root = logging.getLogger()
    saved = list(root.handlers)
    try:
        logs.setup_logging(LoggingConfig(level="warning", target="journald"), "panoseti-x")
        assert len(root.handlers) == 1
        assert isinstance(root.handlers[0], JournalHandler)
        assert root.level == logging.WARNING
    finally:
        logs.setup_logging(LoggingConfig(target="stderr"), "pytest")
        root.handlers[:] = saved


@pytest.mark.parametrize("matching", [True, False])
def test_auto_target_follows_journal_stream_of_stderr(tmp_path: Path, matching: bool) -> None:
    """JOURNAL_STREAM counts only when it names the stream that really is our stderr."""
    err_file = tmp_path / "stderr"
    err_file.touch()
    st = (tmp_path / ("stderr" if matching else ".")).stat()
    code = (
        "from panoseti_appliance.runtime.logs import stderr_is_journal; print(stderr_is_journal())"
    )
    with err_file.open("w") as err:
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"},
            stderr=err,
            stdout=subprocess.PIPE,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    assert out.strip() == str(matching)


def test_auto_target_without_journal_stream_is_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert not logs.stderr_is_journal()
    assert not logs.stderr_is_journal({"JOURNAL_STREAM": "garbage"})


def test_startup_failure_outside_the_journal_goes_to_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    logs.report_startup_failure("panoseti-daqdata", "invalid configuration (1 problem):\nx: y")
    assert capsys.readouterr().err == (
        "panoseti-daqdata: invalid configuration (1 problem):\nx: y\n"
    )
