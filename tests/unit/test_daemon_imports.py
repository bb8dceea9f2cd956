"""A node that only runs the daemons installs the core dependencies, without the extras.

matplotlib, seaborn (the `plot` extra), pandas and rich (the `client` extra) are not installed by
`pip install panoseti-appliance`, so neither daemon, nor the commands the core install promises
(pyproject.toml), may import them. Each case imports its modules in a fresh interpreter, where
nothing an earlier test imported is loaded yet, and lists which of those four it finds loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from panoseti_appliance.cli.extras import EXTRA_OF_MODULE

#: Imports the modules named on the command line and prints which of them and of the extras'
#: modules are loaded afterwards; it starts nothing.
PROBE = """
import importlib, json, sys
targets, extras = sys.argv[1].split(","), sys.argv[2].split(",")
for name in targets:
    importlib.import_module(name)
print(json.dumps({
    "imported": [name for name in targets if name in sys.modules],
    "extras": sorted(name for name in extras if name in sys.modules),
}))
"""

DAEMONS = {
    "panoseti-daqdata": ("panoseti_appliance.daqdata.server.daemon",),
    "panoseti-ubloxcontrol": ("panoseti_appliance.ublox.server.daemon",),
    "console scripts": ("panoseti_appliance.runtime.entry",),
}

#: The `panoseti` subcommands of the core install, with what their handlers import when run.
CORE_COMMANDS = {
    "panoseti": ("panoseti_appliance.cli.main",),
    "config": ("panoseti_appliance.cli.config", "panoseti_appliance.ublox.server.plan"),
    "sim": ("panoseti_appliance.cli.sim", "panoseti_appliance.daqdata.sim.simulator"),
    "emulate-f9t": ("panoseti_appliance.cli.emulate", "panoseti_appliance.ublox.emulator.device"),
    "install-units": ("panoseti_appliance.cli.install_units",),
    "ublox": ("panoseti_appliance.cli.ublox",),
    "pff info": ("panoseti_appliance.cli.pff",),
}


def loaded_after_importing(modules: tuple[str, ...]) -> list[str]:
    """The extras' modules a fresh interpreter has loaded once it imported `modules`."""
    out = subprocess.run(
        # -P: the installed package, not whatever the working directory holds.
        [sys.executable, "-P", "-c", PROBE, ",".join(modules), ",".join(EXTRA_OF_MODULE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["imported"] == list(modules)
    return list(report["extras"])


@pytest.mark.parametrize("modules", DAEMONS.values(), ids=DAEMONS.keys())
def test_daemons_import_no_extra(modules: tuple[str, ...]) -> None:
    assert loaded_after_importing(modules) == []


@pytest.mark.parametrize("modules", CORE_COMMANDS.values(), ids=CORE_COMMANDS.keys())
def test_core_commands_import_no_extra(modules: tuple[str, ...]) -> None:
    assert loaded_after_importing(modules) == []


def test_the_probe_sees_an_extra_that_is_imported() -> None:
    """Without this, an empty list could mean a probe that cannot see anything."""
    assert loaded_after_importing(("rich.console",)) == ["rich"]
