"""The host side of payload/checklib.py: read a boot's checks and turn them into a pytest verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Check:
    """One verdict recorded inside the container: what was checked, whether it held, the evidence."""

    name: str
    ok: bool
    detail: str
    uptime: float

    def line(self) -> str:
        detail = self.detail.replace("\n", "\n      ")
        return f"[{'PASS' if self.ok else 'FAIL'}] {self.uptime:7.3f}s {self.name}: {detail}"


def read_checks(path: Path) -> list[Check]:
    """The checks in a checks.jsonl file, in the order they were made (none if it is missing)."""
    if not path.exists():
        return []
    checks = []
    for text in path.read_text().splitlines():
        if text.strip():
            record = json.loads(text)
            checks.append(
                Check(
                    name=str(record["name"]),
                    ok=bool(record["ok"]),
                    detail=str(record.get("detail", "")),
                    uptime=float(record.get("uptime", 0.0)),
                )
            )
    return checks


def transcript(checks: list[Check]) -> str:
    """One line per check, for the test log (and for quoting in a report)."""
    return "\n".join(c.line() for c in checks) if checks else "(no checks recorded)"


def assert_all_passed(checks: list[Check], returncode: int, context: str = "") -> None:
    """Print the transcript; fail unless the run exited 0 with at least one check, all passed.

    Both conditions are needed: the exit status catches a scenario that died before checking
    anything, the checks catch a scenario that exited 0 despite a failed check.
    """
    print(transcript(checks))
    failed = [c for c in checks if not c.ok]
    problems = []
    if returncode != 0:
        problems.append(f"exit status {returncode}")
    if not checks:
        problems.append("no checks recorded")
    if failed:
        problems.append("failed: " + ", ".join(c.name for c in failed))
    if problems:
        details = "\n".join(c.line() for c in failed)
        raise AssertionError("; ".join(problems) + (f"\n{details}" if details else "") + context)
