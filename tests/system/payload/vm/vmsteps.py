"""What the VM scenarios share: step timings, the end of boot, udev's view of a tty, the emulator.

Runs inside the test VM with the node's venv python, next to checklib and usbgadget. Under TCG every
second counts, so each scenario keeps what its steps took in /result/timings.json (the host test
prints it); a wait that timed out is kept as -1.
"""

from __future__ import annotations

import functools
import json
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from checklib import RESULT_DIR, check, sh, wait_for

VENV = "/opt/panoseti/venv"
PYTHON = f"{VENV}/bin/python"
EMULATOR_LOG = RESULT_DIR / "emulator.log"
#: Generous: python with grpc and pyubx2 starts in seconds under TCG, not milliseconds.
START_TIMEOUT_S = 180.0
TIMINGS: dict[str, float] = {}
T = TypeVar("T")


def record(name: str, seconds: float | None) -> None:
    """Keep one timing in timings.json at once (-1 for a wait that timed out)."""
    TIMINGS[name] = -1.0 if seconds is None else round(seconds, 3)
    (RESULT_DIR / "timings.json").write_text(json.dumps(TIMINGS, indent=1) + "\n")


def timed(name: str, step: Callable[[], T]) -> T:
    """Run `step`, keeping how many seconds it took under `name` in timings.json."""
    t0 = time.monotonic()
    try:
        return step()
    finally:
        record(name, time.monotonic() - t0)


def system_state() -> str:
    return sh("systemctl", "is-system-running").stdout.strip()


def check_booted() -> None:
    """Check that systemd finished booting (the scenario starts after multi-user.target)."""
    record("scenario start (s since boot)", float(Path("/proc/uptime").read_text().split()[0]))
    waited = wait_for(lambda: system_state() not in ("initializing", "starting"), timeout=60)
    state = system_state()
    failed = sh("systemctl", "list-units", "--failed", "--plain", "--no-legend").stdout.strip()
    analyze = sh("systemd-analyze", "time").stdout.strip().splitlines()
    check(
        "systemd finished booting",
        waited is not None and state in ("running", "degraded"),
        f"state {state!r}; {analyze[0] if analyze else '?'}; failed units: {failed or 'none'}",
    )


def measure_imports() -> None:
    """Python start-up under TCG, each in a fresh interpreter (a second run took as long)."""
    for code in (
        "pass",
        "import grpc",
        "import grpc, panoseti_appliance",
        "import panoseti_appliance.ublox.emulator.device",
    ):
        done = timed(f"python -c '{code}'", functools.partial(sh, PYTHON, "-c", code, timeout=300))
        if done.returncode != 0:
            check(f"python -c '{code}'", False, done.stderr)


def udev_properties(device: str) -> dict[str, str]:
    """udev's properties of `device` once the event queue is empty."""
    sh("udevadm", "settle", "--timeout=30")
    out = sh("udevadm", "info", "--query=property", f"--name={device}").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def start_emulator(gadget_tty: str, *options: str) -> subprocess.Popen[str]:
    """`panoseti emulate-f9t --tty gadget_tty`, checked to print its `device:` line.

    Its log goes to /result/emulator.log, where scenarios look for its reopen messages.
    """
    log = EMULATOR_LOG.open("w")
    proc = subprocess.Popen(
        [f"{VENV}/bin/panoseti", "emulate-f9t", "--tty", gadget_tty, "--epoch", "1", *options],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert proc.stdout is not None
    ready = select.select([proc.stdout], [], [], START_TIMEOUT_S)[0]
    line = proc.stdout.readline().strip() if ready else ""
    check(
        "panoseti emulate-f9t --tty serves the gadget's tty",
        line == f"device: {gadget_tty}",
        repr(line),
    )
    return proc


def stop_emulator(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the emulator and check it exits 0 without a traceback."""
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    text = EMULATOR_LOG.read_text()
    check(
        "the emulator exits 0 on SIGTERM without a traceback",
        rc == 0 and "Traceback" not in text,
        f"exit {rc}; log:\n{text.strip()}",
    )
