"""Texts built from client input stay short; repeated bad requests log once per interval."""

from __future__ import annotations

import logging

import pytest

from panoseti_appliance.runtime.bounded import MESSAGE_CHARS, Throttled, bounded, quote


def test_quote_keeps_short_values_whole_and_cuts_long_ones() -> None:
    assert quote("CFG-.*") == "'CFG-.*'"
    long = quote("x" * 10_000)
    assert long.startswith("'xxx")
    assert long.endswith("(10002 characters)")
    assert len(long) < 120


def test_bounded_cuts_a_message_and_says_so() -> None:
    assert bounded("short") == "short"
    cut = bounded("y" * 100_000)
    assert len(cut) < MESSAGE_CHARS + 60
    assert "message cut, 100000 characters" in cut


def test_throttled_logs_one_line_per_kind_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    throttled = Throttled(logging.getLogger("test.throttled"), interval_s=3600)
    with caplog.at_level(logging.WARNING, logger="test.throttled"):
        assert throttled.warning("bad-pattern", "bad pattern %s", quote("a" * 500))
        for _ in range(99):
            assert not throttled.warning("bad-pattern", "bad pattern %s", "x")
        assert throttled.warning("bad-struct", "bad struct")
    assert [r.getMessage()[:11] for r in caplog.records] == ["bad pattern", "bad struct"]
    throttled.interval_s = 0.0
    with caplog.at_level(logging.WARNING, logger="test.throttled"):
        caplog.clear()
        throttled.warning("bad-pattern", "bad pattern again")
    assert (
        caplog.records[0].getMessage().endswith("(99 more of this kind not logged in the last 0 s)")
    )
