"""docs/configuration.md is generated from the schema and current; the shipped examples are valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from panoseti_appliance.config import ApplianceConfig, load_config
from panoseti_appliance.config.reference import render_markdown

REPO = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_current() -> None:
    page = REPO / "docs" / "configuration.md"
    assert page.read_text() == render_markdown(REPO / "examples"), (
        "docs/configuration.md is stale; run `panoseti config docs --output docs/configuration.md`"
    )


def test_reference_describes_every_field() -> None:
    page = render_markdown(None)
    schema = ApplianceConfig.model_json_schema()
    for name, definition in schema["$defs"].items():
        for field, spec in definition["properties"].items():
            assert spec.get("description"), f"{name}.{field} has no description"
            assert f"| `{field}` |" in page
    assert "| `max_concurrent_rpcs` | integer | `100` | ≥ 1, ≤ 10000 |" in page
    assert (
        '| `listen` | list of string | `["127.0.0.1:50051", "unix:///run/panoseti/daqdata.sock"]`'
        in page
    )


@pytest.mark.parametrize("name", ["node.yaml", "simulator.yaml"])
def test_examples_are_valid(name: str) -> None:
    config = load_config(REPO / "examples" / name, environ={})
    assert config.daqdata.hashpipe.enabled is True


def test_examples_cover_their_purpose() -> None:
    node = load_config(REPO / "examples" / "node.yaml", environ={})
    assert node.hp_io.simulate_daq is False
    assert node.ublox.selected_chip() is not None
    sim = load_config(REPO / "examples" / "simulator.yaml", environ={})
    assert sim.hp_io.simulate_daq is True
    assert sim.daqdata.simulator.mode == "uds"
