"""The example notebooks, run top to bottom in a real Jupyter kernel against the real daemons.

The kernel is this venv's Python, registered under a private name in the test's own Jupyter
directories, so no user-wide Jupyter installation is used. Each cell has a time limit; an error
output, anything on stderr, or a blank figure fails the test. The stored notebooks carry no
outputs, so their diffs stay readable.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.daemons import Daemon
from tests.integration.test_client_daemon import start_daqdata
from tests.unit.test_plot import assert_png_looks_live

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).parents[2] / "examples" / "notebooks"
DAQDATA_NOTEBOOK = "daqdata_client_demo.ipynb"
UBLOX_NOTEBOOK = "ublox_demo.ipynb"
KERNEL = "panoseti-test-venv"
CELL_TIMEOUT = 60
MIN_FIGURE_BYTES = 15_000


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel spec for this venv's python, found only through this test's Jupyter paths."""
    data = tmp_path / "jupyter"
    spec = data / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "panoseti venv", "language": "python"})
    )
    for name, where in {
        "JUPYTER_PATH": data,
        "JUPYTER_DATA_DIR": data,
        "JUPYTER_CONFIG_DIR": tmp_path / "jupyter-config",
        "JUPYTER_RUNTIME_DIR": tmp_path / "jupyter-runtime",
        "IPYTHONDIR": tmp_path / "ipython",
    }.items():
        monkeypatch.setenv(name, str(where))
    # A notebook as a reader runs it: no display, no appliance settings in the environment.
    for name in [n for n in os.environ if n.startswith("PANOSETI_")]:
        monkeypatch.delenv(name)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND"):
        monkeypatch.delenv(name, raising=False)
    return KERNEL


def run(name: str, kernel: str, parameters: str) -> nbformat.NotebookNode:
    """Execute a notebook with `parameters` run after its "parameters" cell; the executed copy."""
    notebook: nbformat.NotebookNode = nbformat.read(NOTEBOOKS / name, as_version=4)
    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    notebook.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(parameters))
    NotebookClient(
        notebook,
        kernel_name=kernel,
        timeout=CELL_TIMEOUT,
        startup_timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[Any]:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def stdout(notebook: nbformat.NotebookNode) -> str:
    return "".join(
        o.text for o in outputs(notebook) if o.output_type == "stream" and o.name == "stdout"
    )


def assert_clean(notebook: nbformat.NotebookNode) -> None:
    """No error output and nothing on stderr (warnings and tracebacks land there)."""
    for output in outputs(notebook):
        assert output.output_type != "error", "\n".join(output.traceback)
        if output.output_type == "stream":
            assert output.name == "stdout", output.text


def assert_figures(notebook: nbformat.NotebookNode, count: int, tmp_path: Path) -> None:
    """`count` figures, each a rendered plot rather than a blank canvas."""
    pngs = [o.data["image/png"] for o in outputs(notebook) if "image/png" in o.get("data", {})]
    assert len(pngs) == count
    for n, png in enumerate(pngs):
        path = tmp_path / f"figure{n}.png"
        path.write_bytes(base64.b64decode(png))
        assert_png_looks_live(path, min_bytes=MIN_FIGURE_BYTES)


@pytest.mark.parametrize("name", [DAQDATA_NOTEBOOK, UBLOX_NOTEBOOK])
def test_notebooks_are_stored_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], cell.source
            assert cell.execution_count is None, cell.source


def test_daqdata_notebook_starts_a_node_and_watches_it(kernel: str, tmp_path: Path) -> None:
    notebook = run(DAQDATA_NOTEBOOK, kernel, "STREAM_SECONDS = 4")
    assert_clean(notebook)
    assert_figures(notebook, 2, tmp_path)
    out = stdout(notebook)
    assert re.search(r"started panoseti-daqdata at 127\.0\.0\.1:\d+", out), out
    assert ": answering" in out
    assert "rpc StreamImages(" in out
    assert "the simulator is running" in out
    received = re.search(r"received (\d+) images in 4 s", out)
    assert received, out
    assert int(received.group(1)) > 0, out
    assert re.search(r"(PULSE_HEIGHT|MOVIE) image of module (1|254), frame \d+", out), out
    assert "panoseti-daqdata stopped with exit code 0" in out


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Daemon]:
    running = start_daqdata(tmp_path / "node", [7, 8])
    yield running
    running.stop()


def test_daqdata_notebook_watches_the_address_set_at_the_top(
    kernel: str, node: Daemon, tmp_path: Path
) -> None:
    notebook = run(
        DAQDATA_NOTEBOOK, kernel, f'DAQDATA_ADDRESS = "{node.target}"\nSTREAM_SECONDS = 3'
    )
    assert_clean(notebook)
    assert_figures(notebook, 2, tmp_path)
    out = stdout(notebook)
    assert f"using the server at {node.target}" in out
    assert f"{node.target}: answering" in out
    assert "left the node's own data source alone" in out
    assert re.search(r"image of module (7|8), frame \d+", out), out
    assert "stopped with exit code" not in out  # the node is not the notebook's to stop


def test_ublox_notebook_configures_the_receiver_and_plots_its_timing(
    kernel: str, tmp_path: Path
) -> None:
    notebook = run(UBLOX_NOTEBOOK, kernel, "CAPTURE_SECONDS = 4")
    assert_clean(notebook)
    assert_figures(notebook, 1, tmp_path)
    out = stdout(notebook)
    assert "InitF9t: SUCCESS" in out, out
    for name in ("TIM-TP", "NAV-TIMEUTC"):
        count = re.search(rf"^{name}: (\d+) messages$", out, re.MULTILINE)
        assert count, out
        assert int(count.group(1)) > 0, out
    assert "MON-VER" in out
    assert "MOD=ZED-F9T" in out
    assert "SEC-UNIQID uniqueId=" in out
    assert "CFG_TP_FREQ_TP2=10000000" in out
    assert "panoseti-ubloxcontrol stopped with exit code 0" in out
