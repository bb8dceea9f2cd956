"""The name patterns of CaptureUblox and PollMessage, compiled with RE2 (docs/ublox.md, "Limits
and hostile input").

Python's `re` backtracks: `(\\w+)+!` against one configuration key name takes seconds, against
all 1343 of them minutes, on the daemon's event loop, and `"(" * 5000` overflows its parser.
RE2 matches in time linear in the name and refuses a pattern whose program would outgrow
`MAX_MEM`; a bound on the number and length of a request's patterns keeps compiling them cheap.
Patterns keep `re.match`'s meaning: anchored at the start of the name, not at its end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import re2

from panoseti_appliance.runtime.bounded import quote

#: Bytes RE2 may use for one pattern's program and matching state; a name pattern needs a few KiB.
MAX_MEM = 1 << 20


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = MAX_MEM
    options.log_errors = False  # RE2 would write each refused pattern, whole, to stderr
    return options


_OPTIONS = _options()


class PatternError(ValueError):
    """A request's patterns were refused; the message names the pattern and why."""


@dataclass(frozen=True)
class PatternLimits:
    """How many patterns one request may give, and how long each may be (`ublox` settings)."""

    max_patterns: int = 64
    max_chars: int = 256


DEFAULT_LIMITS = PatternLimits()


@dataclass(frozen=True)
class Patterns:
    """A request's compiled patterns; none at all selects every name."""

    compiled: tuple[re2._Regexp[str], ...]

    def match(self, name: str) -> bool:
        """Whether any pattern matches at the start of `name`."""
        return not self.compiled or any(p.match(name) is not None for p in self.compiled)

    def select(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if self.match(name)]


def _reason(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else exc
    return detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)


def compile_patterns(patterns: Sequence[str], limits: PatternLimits) -> Patterns:
    """Compile a request's patterns; PatternError naming the first one refused."""
    if len(patterns) > limits.max_patterns:
        raise PatternError(f"{len(patterns)} patterns; at most {limits.max_patterns} per request")
    compiled: list[re2._Regexp[str]] = []
    for pattern in patterns:
        if len(pattern) > limits.max_chars:
            raise PatternError(
                f"invalid pattern {quote(pattern)}: is {len(pattern)} characters long; "
                f"at most {limits.max_chars}"
            )
        try:
            compiled.append(re2.compile(pattern, _OPTIONS))
        except re2.error as exc:
            raise PatternError(f"invalid pattern {quote(pattern)}: {_reason(exc)}") from None
    return Patterns(tuple(compiled))
