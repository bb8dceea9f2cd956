"""Build hook: generate panoseti_appliance/_proto from protos/ and provide systemd/ to the package.

The wire contracts live only in protos/*.proto; the Python modules are derived from them so
they can never drift (tests/unit/test_proto_current.py checks the installed ones are current).
Likewise the unit files, udev rule and sysusers/tmpfiles entries live only in systemd/; the build
provides them as panoseti_appliance/_units so that `panoseti install-units` and the NixOS package
install the same files (tests/unit/test_install_units.py checks the installed copy is current).
"""

import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tools"))


def provide_units(source: Path, target: Path, editable: bool) -> None:
    """Make `target` show the files of `source`: a symlink for an editable install (so edits to
    systemd/ apply at once), else an exact copy (a wheel cannot hold a symlink)."""
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    if editable:
        target.symlink_to(os.path.relpath(source, target.parent), target_is_directory=True)
        return
    files = sorted(p for p in source.iterdir() if p.is_file())
    if not files:
        raise SystemExit(f"no unit files in {source}")
    target.mkdir()
    for path in files:
        shutil.copyfile(path, target / path.name)


class BuildPyWithGenerated(build_py):
    def run(self) -> None:
        import gen_protos

        gen_protos.generate(ROOT / "protos", ROOT / "panoseti_appliance" / "_proto")
        editable = bool(getattr(self, "editable_mode", False))
        provide_units(ROOT / "systemd", ROOT / "panoseti_appliance" / "_units", editable)
        super().run()


setup(cmdclass={"build_py": BuildPyWithGenerated})
