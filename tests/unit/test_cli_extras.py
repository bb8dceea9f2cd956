"""A `panoseti` command whose extra is not installed says in one line what to install.

The modules are hidden, not uninstalled: the child interpreter puts a finder first on its import
path that refuses them exactly as a missing package is refused (ModuleNotFoundError).
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from panoseti_appliance.cli.extras import DISTRIBUTION, EXTRA_OF_MODULE

#: argv[1]: comma-separated top-level modules to refuse; the rest is the `panoseti` command line.
HIDE_AND_RUN = """
import sys
hidden = set(sys.argv[1].split(","))

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Refuse())
from panoseti_appliance.cli.main import main
sys.exit(main(sys.argv[2:]))
"""

#: Nothing listens on port 1: a command that got past its imports would fail to connect instead.
NOWHERE = "127.0.0.1:1"


def panoseti_without(hidden: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-c", HIDE_AND_RUN, hidden, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    ("hidden", "args", "missing", "extra"),
    [
        ("matplotlib", ("daq", "--host", NOWHERE, "view", "--png", "v.png"), "matplotlib", "plot"),
        # Without the plot extra both are missing; the first one imported is named.
        (
            "matplotlib,seaborn",
            ("daq", "--host", NOWHERE, "phdist", "--png", "p.png"),
            "matplotlib",
            "plot",
        ),
        ("pandas", ("daq", "--host", NOWHERE, "ping"), "pandas", "client"),
        ("rich", ("daq", "--help"), "rich", "client"),
    ],
    ids=["view-matplotlib", "phdist-plot", "ping-pandas", "daq-rich"],
)
def test_a_missing_extra_is_named_in_one_line(
    hidden: str, args: tuple[str, ...], missing: str, extra: str, tmp_path: Path
) -> None:
    out = panoseti_without(hidden, *args, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f"panoseti: this command needs {missing}, from the '{extra}' extra: "
        f"pip install 'panoseti-appliance[{extra}]'"
    ]
    assert out.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_a_missing_core_module_keeps_its_traceback(tmp_path: Path) -> None:
    """json5 is a core dependency: no extra would bring it back, so none is suggested."""
    out = panoseti_without("json5", "config", "import", "daq_config.json5", cwd=tmp_path)
    assert out.returncode == 1
    assert "Traceback" in out.stderr
    assert out.stderr.splitlines()[-1] == "ModuleNotFoundError: No module named 'json5'"
    assert "pip install" not in out.stderr


def test_the_table_matches_the_installed_metadata() -> None:
    """EXTRA_OF_MODULE names each requirement of the plot and client extras (module = package)."""
    declared: dict[str, str] = {}
    for line in metadata.requires(DISTRIBUTION) or []:
        requirement = Requirement(line)
        for extra in ("plot", "client"):
            if requirement.marker is not None and requirement.marker.evaluate({"extra": extra}):
                declared[requirement.name] = extra
    assert declared == EXTRA_OF_MODULE
