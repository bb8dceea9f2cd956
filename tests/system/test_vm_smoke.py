"""The VM harness: a real kernel with udev, and the emulated receiver behind a USB serial gadget."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.system.harness.rootfs import Node
from tests.system.harness.vm import VM_PAYLOAD, boot_vm, print_timings, verdict

SCENARIOS = Path(__file__).parent / "scenarios"


def test_usb_receiver_answers_through_cdc_acm_across_replug(vm_node: Node) -> None:
    result = boot_vm(vm_node, VM_PAYLOAD / "usb_smoke.py", timeout=480)
    print_timings(result)
    result.assert_passed(
        "udev: the tty has the receiver's ids on cdc_acm",
        "MON-VER over USB is answered by the emulator",
        "unbind: the host's ttyACM goes away",
        "MON-VER is answered again after the re-plug",
    )
    logged = result.messages(SYSLOG_IDENTIFIER="kernel")
    assert any("cdc_acm" in m and "ttyACM0" in m for m in logged), "no cdc_acm line in the journal"


def test_a_failing_check_fails_the_vm_boot(vm_node: Node) -> None:
    result = boot_vm(vm_node, SCENARIOS / "fails_on_purpose.sh", timeout=240)
    assert result.returncode == 1, result.console[-3000:]
    assert [(c.name, c.ok) for c in result.checks] == [
        ("a check that holds", True),
        ("a check that fails on purpose", False),
    ]
    assert "reboot: Power down" in result.console  # FailureAction powered the VM off
    with pytest.raises(AssertionError, match="failed: a check that fails on purpose"):
        result.assert_passed()


@pytest.mark.parametrize(
    ("qemu_rc", "marker", "expected"),
    [
        (0, "exited 0 success", 0),
        (0, "exited 1 exit-code", 1),
        (0, "killed TERM timeout", 1),
        (0, None, 125),  # powered off without the scenario finishing: never a pass
        (124, "exited 0 success", 124),  # QEMU killed by the timeout
    ],
)
def test_only_the_marker_makes_a_pass(
    tmp_path: Path, qemu_rc: int, marker: str | None, expected: int
) -> None:
    path = tmp_path / "exit-status"
    if marker is not None:
        path.write_text(marker + "\n")
    assert verdict(qemu_rc, path) == expected
