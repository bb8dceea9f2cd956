"""The `panoseti` entry point: lazy subcommand imports and a quiet end on a closed pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from panoseti_appliance.cli.main import SUBCOMMANDS
from panoseti_appliance.sample_data import sample_files

PANOSETI = Path(sys.executable).parent / "panoseti"


def test_closed_pipe_ends_quietly_with_sigpipe_status() -> None:
    ph = sample_files()["ph256"]
    proc = subprocess.Popen(
        [str(PANOSETI), "pff", "info", str(ph)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # the reader goes away before the first line, like `| head -0`
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in stderr, stderr
    assert "BrokenPipeError" not in stderr, stderr


def test_only_the_requested_subcommand_is_imported() -> None:
    code = (
        "import sys; from panoseti_appliance.cli.main import main; "
        "rc = main(['pff', 'info', sys.argv[1], '--json']); "
        "print('LOADED', sorted(m for m in sys.modules if m.startswith('panoseti_appliance.cli.')), "
        "'grpc' in sys.modules, file=sys.stderr); sys.exit(rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(sample_files()["ph256"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    line = next(x for x in out.stderr.splitlines() if x.startswith("LOADED"))
    assert "panoseti_appliance.cli.pff" in line
    assert "panoseti_appliance.cli.daq" not in line
    assert "panoseti_appliance.cli.ublox" not in line
    assert line.endswith("False"), "pff info must not import grpc"


def test_help_lists_every_subcommand() -> None:
    out = subprocess.run(
        [str(PANOSETI), "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    for name in SUBCOMMANDS:
        assert name in out.stdout
