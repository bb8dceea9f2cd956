"""The container harness itself: a node boots under a real systemd, and a failure is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.system.harness.checks import Check, assert_all_passed
from tests.system.harness.container import UNIT, boot
from tests.system.harness.rootfs import Node

SCENARIOS = Path(__file__).parent / "scenarios"


def test_node_boots_with_the_appliance_installed(node_root: Node) -> None:
    result = boot(node_root, SCENARIOS / "smoke.py", timeout=120)
    result.assert_passed("panoseti --version", "systemd sees panoseti-daqdata.socket")
    # The journal comes back with its fields: the scenario's own lines, tagged with its unit.
    logged = result.messages(_SYSTEMD_UNIT=UNIT)
    assert any(m.startswith("CHECK PASS panoseti --version") for m in logged), logged


def test_a_failing_check_fails_the_boot(node_root: Node) -> None:
    result = boot(node_root, SCENARIOS / "fails_on_purpose.sh", timeout=60)
    assert result.returncode != 0, result.console
    assert [(c.name, c.ok) for c in result.checks] == [
        ("a check that holds", True),
        ("a check that fails on purpose", False),
    ]
    assert "CHECK FAIL a check that fails on purpose" in result.console
    with pytest.raises(AssertionError, match="failed: a check that fails on purpose"):
        result.assert_passed()


@pytest.mark.parametrize(
    ("returncode", "oks", "problem"),
    [
        (0, [True, False], "failed: check 1"),  # exit 0 despite a failed check
        (1, [True, True], "exit status 1"),  # died after its last check
        (0, [], "no checks recorded"),  # checked nothing
    ],
)
def test_the_verdict_needs_exit_0_and_every_check(
    returncode: int, oks: list[bool], problem: str
) -> None:
    checks = [Check(name=f"check {i}", ok=ok, detail="", uptime=0.0) for i, ok in enumerate(oks)]
    with pytest.raises(AssertionError, match=problem):
        assert_all_passed(checks, returncode)
    assert_all_passed([Check(name="fine", ok=True, detail="", uptime=0.0)], 0)
