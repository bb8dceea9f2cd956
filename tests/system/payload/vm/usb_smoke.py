"""VM smoke scenario: a real kernel, udev and a USB serial gadget that enumerates as a ZED-F9T.

The emulated receiver (`panoseti emulate-f9t --tty`) serves the gadget's end, /dev/ttyGS0, from
before the gadget is first bound; a MON-VER poll written on the host's end, /dev/ttyACM0 on the
real cdc_acm driver, must come back with the receiver's answer, before and after an unplug and
re-plug (gadget unbind, bind). What each step took goes to /result/timings.json: under TCG every
second counts when the real udev tests are written on top of this.

When the node has the project's udev rule and UbloxControl unit, the unit's instance is masked while
this scenario talks to the port itself (two programs on one port garble each other), and a last
plug checks that the rule names the port /dev/ublox-f9t and starts the instance, and that an
unplug stops it.
"""

from __future__ import annotations

import os
import select
import termios
import time
import tty
from pathlib import Path

from checklib import check, main, sh, show, wait_for
from usbgadget import AcmGadget
from vmsteps import (
    EMULATOR_LOG,
    TIMINGS,
    check_booted,
    measure_imports,
    record,
    start_emulator,
    stop_emulator,
    timed,
    udev_properties,
)

UBLOX_UNIT = "panoseti-ubloxcontrol@ttyACM0.service"
UBLOX_LINK = "/dev/ublox-f9t"
ANSWER_TIMEOUT_S = 30.0


def ask_mon_ver(device: str) -> bytes | None:
    """Poll MON-VER on the host's tty, as the daemon would; the answer's payload, or None.

    The poll is repeated every second: bytes sent while the emulator is reopening its end after a
    re-plug are lost, as they would be on a receiver that is still starting.
    """
    from panoseti_appliance.ublox.emulator import f9tmessages as msg
    from panoseti_appliance.ublox.ubxframes import FrameSplitter, build_frame

    fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        tty.setraw(fd)  # cdc_acm starts with echo on: it would send the answer back
        termios.tcflush(fd, termios.TCIOFLUSH)
        splitter = FrameSplitter()
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        resend_at = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= resend_at:
                os.write(fd, build_frame(*msg.MON_VER))
                resend_at = time.monotonic() + 1.0
            if not select.select([fd], [], [], 0.1)[0]:
                continue
            for frame in splitter.feed(os.read(fd, 4096)):
                if (frame.cls_id, frame.msg_id) == msg.MON_VER and frame.payload:
                    return frame.payload
        return None
    finally:
        os.close(fd)


def check_answer(name: str, device: str | None) -> None:
    payload = timed(name, lambda: ask_mon_ver(device)) if device else None
    check(
        name,
        payload is not None and b"MOD=ZED-F9T\0" in payload,
        f"{TIMINGS.get(name)} s; MON-VER extensions: "
        + (", ".join(p.decode() for p in payload[40:].split(b"\0") if p) if payload else "none"),
    )


def scenario() -> None:
    check_booted()
    measure_imports()

    has_unit = sh("systemctl", "cat", "panoseti-ubloxcontrol@.service").returncode == 0
    if has_unit:
        sh("systemctl", "mask", "--runtime", UBLOX_UNIT)
    else:
        print("no panoseti-ubloxcontrol@.service on this node: not checking it", flush=True)

    gadget = AcmGadget()
    timed("modprobe + configfs gadget", gadget.create)
    gadget_tty = gadget.gadget_tty()
    check("the ACM function gives a gadget tty", os.path.exists(gadget_tty), gadget_tty)

    emulator = timed("emulator start to 'device:' line", lambda: start_emulator(gadget_tty))
    try:
        run_usb_steps(gadget)
        check("the emulator outlived unplug and re-plug", emulator.poll() is None, "running")
        if has_unit:
            check_ublox_unit(gadget)
    finally:
        stop_emulator(emulator)
        gadget.remove()


def run_usb_steps(gadget: AcmGadget) -> None:
    gadget.bind()
    took = wait_for(lambda: gadget.host_tty() is not None, timeout=30)
    record("bind -> host tty", took)
    host = gadget.host_tty()
    check("bind: the host side gets a ttyACM", host == "/dev/ttyACM0", f"{host} after {took} s")
    if host is None:
        return
    props = timed("udev settle + info", lambda: udev_properties(host))
    driver = Path(f"/sys/class/tty/{Path(host).name}/device/driver").resolve().name
    wanted = {"ID_VENDOR_ID": "1546", "ID_MODEL_ID": "01a9"}
    check(
        "udev: the tty has the receiver's ids on cdc_acm",
        all(props.get(k) == v for k, v in wanted.items()) and driver == "cdc_acm",
        f"driver {driver}; "
        + " ".join(f"{k}={props.get(k)}" for k in (*wanted, "ID_SERIAL", "DEVLINKS", "TAGS")),
    )
    check_answer("MON-VER over USB is answered by the emulator", host)

    gadget.unbind()
    gone = wait_for(lambda: gadget.host_tty() is None and not os.path.exists(host), timeout=30)
    record("unbind -> host tty gone", gone)
    check("unbind: the host's ttyACM goes away", gone is not None, f"after {gone} s")
    lost = wait_for(lambda: "lost" in EMULATOR_LOG.read_text(), timeout=30)
    check("the emulator noticed the hang-up", lost is not None, f"after {lost} s")
    # A gadget tty opens while unbound and carries data once bound: the emulator is back on it
    # before the re-plug, so the answer below also proves an open across a bind.
    reopened = wait_for(lambda: "is back" in EMULATOR_LOG.read_text(), timeout=30)
    check(
        "the emulator reopens the gadget tty while unplugged",
        reopened is not None and gadget.host_tty() is None and not gadget.bound(),
        f"after {reopened} s",
    )

    gadget.bind()
    back = wait_for(lambda: gadget.host_tty() is not None, timeout=30)
    record("rebind -> host tty", back)
    again = gadget.host_tty()
    check("rebind: the host's ttyACM is back", again is not None, f"{again} after {back} s")
    check_answer("MON-VER is answered again after the re-plug", again)


def check_ublox_unit(gadget: AcmGadget) -> None:
    """The project's rule and unit on a re-plug: the stable symlink, the instance started and
    stopped with the device (what the daemon then does is for the real udev tests)."""
    sh("systemctl", "unmask", "--runtime", UBLOX_UNIT)
    gadget.unbind()
    unplugged = wait_for(
        lambda: gadget.host_tty() is None and not os.path.lexists(UBLOX_LINK), timeout=30
    )
    check("unplug removes /dev/ublox-f9t", unplugged is not None, f"after {unplugged} s")
    gadget.bind()
    t0 = time.monotonic()
    linked = wait_for(lambda: os.path.realpath(UBLOX_LINK) == "/dev/ttyACM0", timeout=30)
    record("bind -> /dev/ublox-f9t", None if linked is None else time.monotonic() - t0)
    check("the udev rule links /dev/ublox-f9t to the port", linked is not None, f"after {linked} s")
    started = wait_for(lambda: show(UBLOX_UNIT, "ActiveState") in ("activating", "active"), 30)
    record(f"bind -> {UBLOX_UNIT} starting", None if started is None else time.monotonic() - t0)
    active = wait_for(lambda: show(UBLOX_UNIT, "ActiveState") == "active", timeout=60)
    record(f"bind -> {UBLOX_UNIT} active", None if active is None else time.monotonic() - t0)
    check(
        f"udev starts {UBLOX_UNIT}",
        started is not None,
        f"starting after {started} s, active after {active} s; now "
        f"{show(UBLOX_UNIT, 'ActiveState')}/{show(UBLOX_UNIT, 'SubState')}: "
        f"{show(UBLOX_UNIT, 'StatusText') or show(UBLOX_UNIT, 'Result')}",
    )
    gadget.unbind()
    stopped = wait_for(
        lambda: (
            show(UBLOX_UNIT, "ActiveState") in ("inactive", "failed")
            and not os.path.lexists(UBLOX_LINK)
        ),
        timeout=30,
    )
    check(
        f"unplug stops {UBLOX_UNIT}",
        stopped is not None,
        f"after {stopped} s: {show(UBLOX_UNIT, 'ActiveState')}; "
        f"{UBLOX_LINK} {'still there' if os.path.lexists(UBLOX_LINK) else 'gone'}",
    )


if __name__ == "__main__":
    main(scenario)
