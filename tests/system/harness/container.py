"""Boot a prepared node under a real systemd (systemd-nspawn -b) and run one scenario in it.

The scenario runs as `panoseti-systest.service`, ordered after multi-user.target so boot finishes
first. Its unit has SuccessAction=exit and FailureAction=exit, which make the container's PID 1 exit
with the scenario's exit status: nspawn's exit code is the scenario's result. Checks come back
through a host directory bound at /result, the journal from the boot's own upper layer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

from .checks import Check, assert_all_passed, read_checks
from .rootfs import NSPAWN_ENV, VENV, Node, nspawn_base

log = logging.getLogger("panoseti.systest")

UNIT = "panoseti-systest.service"
#: Where the scenario and checklib.py are placed inside the container.
PAYLOAD_DIR = "/usr/local/lib/panoseti-systest"
CHECKLIB = Path(__file__).resolve().parents[1] / "payload" / "checklib.py"
#: Seconds the scenario unit gets less than the whole boot, so its own RuntimeMaxSec fires first
#: and the container still shuts down cleanly with its journal.
_SHUTDOWN_MARGIN = 15.0
#: Seconds a container that overran its time gets to power off before it is killed.
_STOP_GRACE = 20.0
#: The exit status of a boot that had to be stopped (coreutils' `timeout` convention).
TIMED_OUT = 124

#: The test unit of every boot (container or VM). `unit` and `service` are what each harness adds
#: to the [Unit] and [Service] sections: how the scenario's end ends the boot.
_UNIT_TEMPLATE = """\
[Unit]
Description=PANOSETI system test scenario {name}
After=multi-user.target
{unit}
[Service]
Type=simple
ExecStart={interpreter} {payload}/{name}
Environment=PYTHONPATH={payload} PYTHONUNBUFFERED=1 CHECKLIB={payload}/checklib.py
StandardOutput=journal+console
StandardError=journal+console
RuntimeMaxSec={runtime}
LimitCORE=0
{service}"""
#: In a container the scenario's end makes PID 1 exit, with the scenario's exit status.
_CONTAINER_UNIT = "SuccessAction=exit\nFailureAction=exit\n"
_CONTAINER_SERVICE = "TimeoutStopSec=5\n"

#: The journal must survive the container: keep it in /var (the boot's upper layer), not /run.
_JOURNALD_DROPIN = "[Journal]\nStorage=persistent\n"


@dataclass(frozen=True)
class BootResult:
    """What one boot left behind. `run_dir` keeps console.log, result/ and the upper layer."""

    returncode: int
    console: str
    journal: list[dict[str, Any]]
    checks: list[Check]
    run_dir: Path
    seconds: float

    def messages(self, **fields: str) -> list[str]:
        """MESSAGE of each journal entry whose fields equal all of `fields`, in journal order."""
        return [
            _text(entry.get("MESSAGE"))
            for entry in self.journal
            if all(_text(entry.get(k)) == v for k, v in fields.items())
        ]

    def assert_passed(self, *names: str) -> None:
        """Print the checks; fail unless the scenario exited 0 and every check passed, and every
        check in `names` was recorded (a scenario that skipped one cannot pass)."""
        tail = "\n".join(self.console.splitlines()[-60:])
        assert_all_passed(self.checks, self.returncode, f"\n--- console (last lines) ---\n{tail}")
        recorded = {c.name for c in self.checks}
        missing = [name for name in names if name not in recorded]
        assert not missing, f"missing checks: {missing}"


def boot(
    node: Node,
    scenario: Path,
    *,
    files: Mapping[str, bytes | Path] | None = None,
    timeout: float = 180.0,
) -> BootResult:
    """Boot `node` with a fresh upper layer, run `scenario` as the test unit, and collect the result.

    `scenario` runs with the venv's python if it ends in .py (so it can import grpc,
    panoseti_appliance and checklib), otherwise with /bin/sh. `files` maps absolute container paths to
    contents or host files (a directory is copied whole) and is written after the harness's own files,
    so it may replace them. Bytes starting with "#!" become executable. `timeout` bounds the boot.
    """
    run_dir = Path(mkdtemp(prefix=f"boot-{scenario.stem}-", dir=node.scratch))
    result_dir = run_dir / "result"
    result_dir.mkdir()
    upper = run_dir / "upper"
    placed: dict[str, bytes | Path] = {
        **scenario_files(
            scenario,
            max(5, int(timeout - _SHUTDOWN_MARGIN)),
            unit=_CONTAINER_UNIT,
            service=_CONTAINER_SERVICE,
        ),
        "/etc/systemd/journald.conf.d/panoseti-systest.conf": _JOURNALD_DROPIN.encode(),
        **(files or {}),
    }
    with node.mounted(upper) as root:
        install_scenario(root, placed)
        returncode, seconds = _run_container(root, result_dir, run_dir / "console.log", timeout)
    # The console is a pty: systemd's "\r\n" arrives as "\r\r\n".
    console = (run_dir / "console.log").read_bytes().replace(b"\r", b"").decode(errors="replace")
    journal = _read_journal(upper / "var/log/journal")
    log.info("boot of %s: exit %d after %.2f s", scenario.name, returncode, seconds)
    return BootResult(
        returncode=returncode,
        console=console,
        journal=journal,
        checks=read_checks(result_dir / "checks.jsonl"),
        run_dir=run_dir,
        seconds=seconds,
    )


def scenario_files(
    scenario: Path, runtime: int, *, unit: str, service: str
) -> dict[str, bytes | Path]:
    """checklib, the scenario and its test unit: what every boot (container or VM) places.

    A .py scenario runs with the venv's python, anything else with /bin/sh, for at most `runtime`
    seconds (the unit's RuntimeMaxSec=); `unit` and `service` are the boot's own lines of the
    unit's [Unit] and [Service] sections.
    """
    interpreter = f"{VENV}/bin/python" if scenario.suffix == ".py" else "/bin/sh"
    text = _UNIT_TEMPLATE.format(
        name=scenario.name,
        interpreter=interpreter,
        payload=PAYLOAD_DIR,
        runtime=runtime,
        unit=unit,
        service=service,
    )
    return {
        f"{PAYLOAD_DIR}/checklib.py": CHECKLIB,
        f"{PAYLOAD_DIR}/{scenario.name}": scenario,
        f"/etc/systemd/system/{UNIT}": text.encode(),
    }


def install_scenario(root: Path, placed: Mapping[str, bytes | Path]) -> None:
    """Write `placed` into the root and make multi-user.target want the test unit."""
    for path, content in placed.items():
        place(root, path, content)
    wants = root / "etc/systemd/system/multi-user.target.wants" / UNIT
    wants.parent.mkdir(parents=True, exist_ok=True)
    wants.unlink(missing_ok=True)
    wants.symlink_to(f"/etc/systemd/system/{UNIT}")


def place(root: Path, path: str, content: bytes | Path) -> None:
    """Write one file (or copy a directory) into the container root, never through a symlink."""
    if not path.startswith("/"):
        raise ValueError(f"container paths must be absolute: {path!r}")
    dest = root / path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not os.path.realpath(dest.parent).startswith(os.path.realpath(root) + "/"):
        raise ValueError(f"{path!r} leads out of the container root through a symlink")
    if dest.is_symlink():
        dest.unlink()
    if isinstance(content, bytes):
        dest.write_bytes(content)
        dest.chmod(0o755 if content.startswith(b"#!") else 0o644)
    elif content.is_dir():
        shutil.copytree(content, dest, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(content, dest)


def _run_container(
    root: Path, result_dir: Path, console: Path, timeout: float
) -> tuple[int, float]:
    """Boot with nspawn and return (exit status, seconds); `TIMED_OUT` if it had to be stopped.

    The time limit is kept here rather than by coreutils' `timeout`, whose last resort (SIGKILL to
    nspawn) would orphan the container: see `_stop`.
    """
    argv = [
        *nspawn_base(root),
        "--boot",
        "--console=read-only",
        "--private-network",
        "--resolv-conf=off",
        f"--bind={result_dir}:/result",
    ]
    t0 = time.monotonic()
    with console_process(argv, console, env={**os.environ, **NSPAWN_ENV}) as proc:
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("the container did not exit within %.0f s; stopping it", timeout)
            returncode = TIMED_OUT
        finally:  # also when pytest-timeout or ^C interrupts the wait
            if proc.poll() is None:
                _stop(proc)
    return returncode, time.monotonic() - t0


@contextlib.contextmanager
def console_process(
    argv: list[str], console: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`argv` (a booting machine) started with its output, the machine's console, going to the
    file `console`, in a session of its own: a ^C reaches only pytest, which then stops it."""
    with console.open("wb") as out:
        yield subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop an unfinished container so that nothing of it survives.

    SIGTERM makes nspawn power the container off cleanly. The container's processes live in their
    own session and PID namespace, so killing nspawn alone would orphan them: if the clean way takes
    too long, everything below nspawn is killed first (the container's init takes its namespace).
    """
    proc.terminate()
    try:
        proc.wait(timeout=_STOP_GRACE)
        return
    except subprocess.TimeoutExpired:
        log.warning("the container did not power off within %.0f s; killing it", _STOP_GRACE)
    for pid in _descendants(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.kill()
    proc.wait()


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, from the parent links in /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        below = frontier.pop()
        children = [child for child, parent in parents.items() if parent == below]
        found += children
        frontier += children
    return found


def _read_journal(directory: Path) -> list[dict[str, Any]]:
    """Every entry of the container's persistent journal, as `journalctl -o json` gives them."""
    if not directory.is_dir():
        return []
    out = subprocess.run(
        ["journalctl", f"--directory={directory}", "--output=json", "--no-pager"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _text(value: object) -> str:
    """A journal field as text: journalctl gives non-UTF-8 values as byte lists, and a field that
    occurs more than once in an entry as a list of its values (the last one is kept here)."""
    if isinstance(value, list):
        if all(isinstance(v, int) for v in value):
            return bytes(value).decode(errors="replace")
        return _text(value[-1]) if value else ""
    return "" if value is None else str(value)
