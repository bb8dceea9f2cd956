"""Harness for the system tests: Debian roots, wheels, container boots, checks.

rootfs.py builds and caches the layers of a node root, wheels.py the wheels its venv is filled from,
container.py boots a node under systemd-nspawn and runs one scenario in it, checks.py reads the
verdicts that payload/checklib.py records inside. tests/system/README.md documents the API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.prerequisites import unavailable

#: The tools every system test needs, and the Debian package each comes from.
TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "journalctl": "systemd",
}


def missing_prerequisites(tools: dict[str, str] | None = None) -> list[str]:
    """What this machine lacks for the system tests (empty when they can run)."""
    missing = [] if os.geteuid() == 0 else ["root"]
    for tool, package in {**TOOLS, **(tools or {})}.items():
        if shutil.which(tool) is None:
            missing.append(f"{tool} (Debian package {package})")
    if not _has_overlayfs():
        missing.append("overlayfs in the kernel")
    return missing


def require(tools: dict[str, str] | None = None) -> None:
    """Skip the calling test in one line if a prerequisite is missing; fail under `make test`."""
    missing = missing_prerequisites(tools)
    if not missing:
        return
    unavailable("system tests need " + ", ".join(missing))


def _has_overlayfs() -> bool:
    def listed() -> bool:
        return "\toverlay\n" in Path("/proc/filesystems").read_text()

    if not listed() and os.geteuid() == 0:
        subprocess.run(["modprobe", "overlay"], capture_output=True, check=False)
    return listed()
