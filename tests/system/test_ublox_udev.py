"""panoseti-ubloxcontrol@.service and its udev rule with a real kernel, udev and systemd (QEMU VM).

One boot runs payload/vm/ublox_udev.py, whose docstring lists the steps: plug (gadget bind) starts
the unit, InitF9t and CaptureUblox through it, device isolation, unplug stops it, a re-plug with
init_on_start brings the receiver back without a client. The journal is checked again here, from
the host, with systemd's own lines about the unit.
"""

from __future__ import annotations

from pathlib import Path

from tests.system.harness.container import PAYLOAD_DIR
from tests.system.harness.rootfs import Node
from tests.system.harness.vm import VM_PAYLOAD, boot_vm, print_timings

PROJECT = Path(__file__).resolve().parents[2]
UNIT = "panoseti-ubloxcontrol@ttyACM0.service"
#: The scenario initialises the receiver with the shipped example config.
FILES = {f"{PAYLOAD_DIR}/f9t_config.json5": PROJECT / "tests" / "data" / "f9t_config.json5"}


def test_udev_starts_the_unit_which_serves_only_its_receiver_across_replug(
    vm_node: Node,
) -> None:
    result = boot_vm(vm_node, VM_PAYLOAD / "ublox_udev.py", files=FILES, timeout=600)
    print_timings(result)
    result.assert_passed(
        f"plug: udev starts {UNIT} and it reaches active (READY=1)",
        "InitF9t through the unit's unix socket configures the receiver on /dev/ttyACM0",
        "CaptureUblox streams the receiver's TIM-TP and NAV-TIMEUTC",
        "unplug: BindsTo= stops the unit and the daemon exits 0",
        "re-plug: CaptureUblox streams again without an InitF9t from the test",
        "systemd never restarted the daemon nor hit its watchdog",
    )

    # systemd's own lines about the instance: two plugs, two clean stops, nothing else.
    said = result.messages(UNIT=UNIT)
    assert sum(m.startswith("Started ") for m in said) == 2, said
    assert not [m for m in said if "atchdog" in m or "restart" in m.lower()], said
    # What the daemon logged itself, natively: its identifier and the device field.
    tagged = result.messages(
        _SYSTEMD_UNIT=UNIT, SYSLOG_IDENTIFIER="panoseti-ubloxcontrol", DEVICE="/dev/ttyACM0"
    )
    assert any("initialised by the daemon" in m for m in tagged), tagged
    # An unplug is waited out, not mistaken for a permission problem: the node left behind in the
    # unit's private /dev (mode 0000) counts as gone.
    warned = result.messages(_SYSTEMD_UNIT=UNIT, PRIORITY="4")
    assert not [m for m in warned if "re-initialising F9T" in m], warned
