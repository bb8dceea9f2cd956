"""Wheels for the node's venv: the project's dependencies (cached) and the project itself (per session).

The container has no network, so everything it installs comes from here. The dependencies are built
with the host venv's pip, which targets the same CPython minor version and glibc as the Debian 12 root;
systemd-python has no binary wheel and is compiled against the host's libsystemd-dev, the same systemd
version the root has.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from .rootfs import cache_key, cached, run

log = logging.getLogger("panoseti.systest")


def dependencies(pyproject: Path) -> list[str]:
    """The runtime requirements declared in pyproject.toml, in their written order."""
    with pyproject.open("rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def wheelhouse(pyproject: Path) -> Path:
    """The cached directory of wheels for every runtime dependency, with requirements.txt.

    Keyed by the requirement list and the interpreter, so editing the dependencies rebuilds it.
    """
    deps = dependencies(pyproject)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"

    def build(house: Path) -> None:
        log.info("building the wheelhouse for %d requirements", len(deps))
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(house), *deps])
        (house / "requirements.txt").write_text("\n".join(deps) + "\n")
        (house / "python.txt").write_text(version + "\n")

    return cached("wheels", cache_key("wheels", deps, version, sys.platform), build)


def project_wheel(tree: Path, dest: Path) -> Path:
    """Build the project's wheel from the working tree as it is now (committed or not) into `dest`.

    The build runs on a copy of the tree's files (tracked plus untracked-but-not-ignored), so it
    neither writes build/ or egg-info into a tree others may be using nor picks up stray artefacts.
    """
    listing = subprocess.run(
        ["git", "-C", str(tree), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="panoseti-src-") as tmp:
        src = Path(tmp)
        for name in filter(None, listing.split("\0")):
            path = tree / name
            if path.is_file():
                (src / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, src / name)
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dest), tmp])
    (wheel,) = dest.glob("*.whl")
    return wheel
