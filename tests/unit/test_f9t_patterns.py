"""CaptureUblox and PollMessage patterns: RE2, anchored at the start, bounded (docs/ublox.md)."""

from __future__ import annotations

import pytest

from panoseti_appliance.ublox.server.patterns import (
    PatternError,
    PatternLimits,
    compile_patterns,
)
from panoseti_appliance.ublox.values import all_key_names

LIMITS = PatternLimits()
NAMES = ["TIM-TP", "NAV-TIMEUTC", "NAV-PVT", "MON-VER", "MON-HW", "SEC-UNIQID"]


def select(patterns: list[str], names: list[str] = NAMES) -> list[str]:
    return compile_patterns(patterns, LIMITS).select(names)


def test_patterns_match_at_the_start_of_the_name_as_re_match_does() -> None:
    assert select(["TIM"]) == ["TIM-TP"]
    assert select(["TP"]) == []
    assert select(["NAV-TIME", "MON-HW$"]) == ["NAV-TIMEUTC", "MON-HW"]
    assert select(["MON-(VER|HW)$", r"(?i)sec-uniq"]) == ["MON-VER", "MON-HW", "SEC-UNIQID"]
    assert select([".*-T"]) == ["TIM-TP", "NAV-TIMEUTC"]
    assert select([]) == NAMES  # no pattern selects everything


def test_a_backtracking_pattern_is_matched_in_linear_time_and_selects_what_it_should() -> None:
    keys = all_key_names()
    assert select([r"(\w+)+!", r"(.*)*x", r"(a|a)*b"], keys) == []
    assert select([r"(\w+)+_USB$"], keys) == [k for k in keys if k.endswith("_USB")]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(", "invalid pattern '(': missing ): ("),
        ("[", "invalid pattern '[': missing ]: ["),
        (r"(TIM)-\1", r"invalid pattern '(TIM)-\\1': invalid escape sequence: \1"),
        ("TIM(?=-TP)", "invalid pattern 'TIM(?=-TP)': invalid perl operator: (?="),
        ("TIM(?<!X)", "invalid pattern 'TIM(?<!X)': invalid perl operator: (?<!"),
        ("T{1001}", "invalid pattern 'T{1001}': invalid repetition size: {1001}"),
        (r"\pL{1000}", r"invalid pattern '\\pL{1000}': pattern too large - compile failed"),
    ],
)
def test_what_re2_refuses_is_named_with_its_reason(pattern: str, message: str) -> None:
    with pytest.raises(PatternError) as info:
        compile_patterns(["TIM", pattern], LIMITS)
    assert str(info.value) == message


def test_the_number_and_length_of_patterns_are_bounded() -> None:
    limits = PatternLimits(max_patterns=3, max_chars=10)
    assert compile_patterns(["T" * 10] * 3, limits).match("T" * 10)
    with pytest.raises(PatternError, match=r"^4 patterns; at most 3 per request$"):
        compile_patterns(["T"] * 4, limits)
    with pytest.raises(PatternError) as info:
        compile_patterns(["T", "(" * 5000 + ")" * 5000], limits)
    message = str(info.value)
    assert message.startswith("invalid pattern '((((")
    assert message.endswith("… (10002 characters): is 10000 characters long; at most 10")
    assert len(message) < 200
