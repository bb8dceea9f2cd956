"""Checks for scenarios running inside a test container or VM (standard library only).

Every check is one JSON line in /result/checks.jsonl (a host directory bound into the container), so
the host gets each verdict with its evidence even when the scenario dies half-way, plus one readable
line on the console. The scenario's exit status is the boot's result: end with `finish()`.

Python scenarios import this module (it sits next to them on PYTHONPATH). Shell scenarios call it:
    python3 "$CHECKLIB" check NAME STATUS [DETAIL]   # STATUS is a shell exit status: 0 passes
    exec python3 "$CHECKLIB" finish
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

RESULT_DIR = Path(os.environ.get("SYSTEST_RESULT", "/result"))
CHECKS = RESULT_DIR / "checks.jsonl"


def check(name: str, ok: object, detail: object = "") -> bool:
    """Record one verdict; returns it so a scenario can skip what depends on a failed check."""
    passed = bool(ok)
    record = {"name": name, "ok": passed, "detail": str(detail), "uptime": _uptime()}
    with CHECKS.open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(f"CHECK {'PASS' if passed else 'FAIL'} {name}: {detail}", flush=True)
    return passed


def wait_for(cond: Callable[[], object], timeout: float, interval: float = 0.1) -> float | None:
    """Poll `cond` until it is truthy; the seconds that took, or None after `timeout` seconds."""
    start = time.monotonic()
    while True:
        if cond():
            return time.monotonic() - start
        if time.monotonic() - start >= timeout:
            return None
        time.sleep(interval)


def sh(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output; never raises on a non-zero exit."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def show(unit: str, prop: str) -> str:
    """One property of a unit, as `systemctl show -p PROP --value UNIT` prints it."""
    return sh("systemctl", "show", "-p", prop, "--value", unit).stdout.strip()


def results() -> list[dict[str, object]]:
    """Every check recorded so far in this boot, by any process."""
    if not CHECKS.exists():
        return []
    return [json.loads(line) for line in CHECKS.read_text().splitlines() if line.strip()]


def finish() -> NoReturn:
    """Exit 0 only if at least one check was recorded and every check passed."""
    records = results()
    failed = [str(r["name"]) for r in records if not r["ok"]]
    passed = bool(records) and not failed
    summary = (
        f"{len(records)} checks, failed: {', '.join(failed)}"
        if failed
        else f"{len(records)} checks"
    )
    print(
        f"RESULT {'PASS' if passed else 'FAIL'} ({summary if records else 'no checks'})", flush=True
    )
    sys.exit(0 if passed else 1)


def main(scenario: Callable[[], object]) -> NoReturn:
    """Run a scenario function; an exception becomes a failed check instead of a lost verdict."""
    try:
        scenario()
    except Exception:  # noqa: BLE001 - the verdict's top level: any failure is a failed check
        check(f"{scenario.__name__} ran to the end", False, traceback.format_exc(limit=8))
    finish()


def _uptime() -> float:
    """Seconds since this container's (or VM's) init started: lets a transcript read as a timeline.

    Not the boot clock alone: a container shares the host's, so PID 1's start time is subtracted.
    """
    fields = Path("/proc/1/stat").read_text().rsplit(")", 1)[1].split()
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return round(time.clock_gettime(time.CLOCK_BOOTTIME) - started, 3)


def _cli(args: list[str]) -> int:
    if len(args) in (3, 4) and args[0] == "check":
        return 0 if check(args[1], args[2] == "0", args[3] if len(args) == 4 else "") else 1
    if args == ["finish"]:
        finish()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
