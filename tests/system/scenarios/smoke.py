"""Smoke scenario: the node boots, and the appliance is installed where systemd and users find it."""

from __future__ import annotations

import sys
from pathlib import Path

from checklib import check, main, sh, wait_for

VENV = "/opt/panoseti/venv"


def system_state() -> str:
    return sh("systemctl", "is-system-running").stdout.strip()


def scenario() -> None:
    waited = wait_for(lambda: system_state() not in ("initializing", "starting"), timeout=30)
    state = system_state()
    failed = sh("systemctl", "list-units", "--failed", "--plain", "--no-legend").stdout.strip()
    check(
        "systemd finished booting",
        waited is not None and state in ("running", "degraded"),
        f"state {state!r} after {'30+' if waited is None else f'{waited:.2f}'} s; "
        f"failed units: {failed or 'none'}",
    )

    version = sh(f"{VENV}/bin/panoseti", "--version")
    check(
        "panoseti --version",
        version.returncode == 0 and version.stdout.startswith("panoseti "),
        f"exit {version.returncode}: {(version.stdout + version.stderr).strip()}",
    )

    import grpc

    import panoseti_appliance

    check(
        "the venv imports grpc and panoseti_appliance",
        sys.prefix == VENV and Path(panoseti_appliance.__file__).is_relative_to(VENV),
        f"python {sys.version.split()[0]} in {sys.prefix}; grpc {grpc.__version__}; "
        f"panoseti_appliance {panoseti_appliance.__version__} from {panoseti_appliance.__file__}",
    )

    cat = sh("systemctl", "cat", "panoseti-daqdata.socket")
    check(
        "systemd sees panoseti-daqdata.socket",
        cat.returncode == 0,
        (cat.stdout.splitlines() or [cat.stderr.strip()])[0],
    )


if __name__ == "__main__":
    main(scenario)
