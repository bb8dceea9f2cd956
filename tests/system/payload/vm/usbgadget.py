"""A USB serial gadget that enumerates like a u-blox generation-9 receiver (in the test VM; stdlib only).

`dummy_hcd` gives the kernel a virtual USB host controller wired to a virtual device controller
(UDC). A configfs gadget with one CDC-ACM function, bound to that UDC, is seen by the host side as
a real USB device on the `cdc_acm` driver: /dev/ttyACMn with the receiver's 1546:01a9 ids, udev
events, a systemd device unit. The gadget's own end of the line is /dev/ttyGS<n>, where
`panoseti emulate-f9t --tty` answers as the receiver. Unbinding the gadget is an unplug, binding it
again a re-plug.

Python (the scenario sits next to this file):
    gadget = AcmGadget()
    gadget.create()          # loads the modules; /dev/ttyGS0 exists from here on
    gadget.bind()            # plug in: /dev/ttyACM0 appears
    gadget.host_tty()        # "/dev/ttyACM0" while bound, None otherwise
    gadget.unbind()          # unplug
    gadget.remove()          # unbinds and takes the gadget apart
Shell: python3 usbgadget.py create|bind|unbind|remove|status
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

CONFIGFS = Path("/sys/kernel/config")
UDC_CLASS = Path("/sys/class/udc")
TTY_CLASS = Path("/sys/class/tty")
#: What a ZED-F9T EVK reports. Its boards have no USB serial number, so none is set by default.
UBLOX_VENDOR = 0x1546
UBLOX_GEN9_PRODUCT = 0x01A9
UBLOX_MANUFACTURER = "u-blox AG - www.u-blox.com"
UBLOX_PRODUCT = "u-blox GNSS receiver"
LANG_EN_US = "0x409"


def modprobe(*modules: str) -> None:
    for module in modules:
        subprocess.run(["modprobe", module], check=True, capture_output=True, text=True)


def _wait(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(0.05)


def udc_name() -> str:
    """The first USB device controller (dummy_udc.0 with dummy_hcd)."""
    names = sorted(p.name for p in UDC_CLASS.iterdir()) if UDC_CLASS.is_dir() else []
    if not names:
        raise RuntimeError(f"no USB device controller in {UDC_CLASS}: is dummy_hcd loaded?")
    return names[0]


class AcmGadget:
    """One configfs gadget with one ACM function (a serial port) on the dummy controller."""

    def __init__(
        self,
        name: str = "f9t",
        *,
        vendor: int = UBLOX_VENDOR,
        product: int = UBLOX_GEN9_PRODUCT,
        manufacturer: str = UBLOX_MANUFACTURER,
        product_name: str = UBLOX_PRODUCT,
        serial: str | None = None,
    ) -> None:
        self.path = CONFIGFS / "usb_gadget" / name
        self.vendor, self.product = vendor, product
        self.manufacturer, self.product_name, self.serial = manufacturer, product_name, serial
        self.function = self.path / "functions" / "acm.usb0"
        self.config = self.path / "configs" / "c.1"

    def create(self) -> None:
        """Load dummy_hcd and libcomposite and build the gadget (unbound) if it does not exist."""
        modprobe("dummy_hcd", "libcomposite")
        _wait(lambda: UDC_CLASS.is_dir() and any(UDC_CLASS.iterdir()), "no UDC appeared")
        if not (CONFIGFS / "usb_gadget").is_dir():
            subprocess.run(["mount", "-t", "configfs", "none", str(CONFIGFS)], check=False)
        if self.path.exists():
            return
        self.path.mkdir()
        self._write("idVendor", f"0x{self.vendor:04x}")
        self._write("idProduct", f"0x{self.product:04x}")
        self._write("bcdUSB", "0x0200")
        self._write("bcdDevice", "0x0100")
        strings = self.path / "strings" / LANG_EN_US
        strings.mkdir(parents=True)
        (strings / "manufacturer").write_text(self.manufacturer)
        (strings / "product").write_text(self.product_name)
        if self.serial is not None:
            (strings / "serialnumber").write_text(self.serial)
        (self.config / "strings" / LANG_EN_US).mkdir(parents=True)
        (self.config / "strings" / LANG_EN_US / "configuration").write_text("ACM")
        self.function.mkdir(parents=True)  # loads usb_f_acm; /dev/ttyGS<n> exists from now on
        (self.config / self.function.name).symlink_to(self.function)

    def _write(self, attribute: str, value: str) -> None:
        (self.path / attribute).write_text(value)

    def gadget_tty(self) -> str:
        """The gadget's end of the serial line, /dev/ttyGS<n> (exists while the gadget exists)."""
        return f"/dev/ttyGS{(self.function / 'port_num').read_text().strip()}"

    def bound(self) -> bool:
        return (self.path / "UDC").read_text().strip() != ""

    def bind(self, udc: str | None = None) -> None:
        """Plug in: attach the gadget to the device controller."""
        self._write("UDC", udc or udc_name())

    def unbind(self) -> None:
        """Unplug: detach the gadget (its ttyGS hangs up, the host's ttyACM goes away)."""
        if self.bound():
            self._write("UDC", "\n")

    def host_tty(self) -> str | None:
        """The host side's /dev/ttyACMn of this gadget, or None while it is not there."""
        if not TTY_CLASS.is_dir():
            return None
        for entry in sorted(TTY_CLASS.glob("ttyACM*")):
            device = (entry / "device").resolve()  # the USB interface; its parent is the device
            try:
                ids = (
                    (device.parent / "idVendor").read_text(),
                    (device.parent / "idProduct").read_text(),
                )
            except OSError:
                continue
            if (int(ids[0], 16), int(ids[1], 16)) == (self.vendor, self.product):
                return f"/dev/{entry.name}"
        return None

    def remove(self) -> None:
        """Unbind and take the configfs tree apart (configfs needs rmdir in reverse order)."""
        if not self.path.exists():
            return
        self.unbind()
        link = self.config / self.function.name
        if link.is_symlink():
            link.unlink()
        for directory in (
            self.config / "strings" / LANG_EN_US,
            self.config,
            self.function,
            self.path / "strings" / LANG_EN_US,
            self.path,
        ):
            if directory.exists():
                os.rmdir(directory)


def main(argv: list[str]) -> int:
    gadget = AcmGadget()
    actions = {
        "create": gadget.create,
        "bind": gadget.bind,
        "unbind": gadget.unbind,
        "remove": gadget.remove,
    }
    if len(argv) == 1 and argv[0] in actions:
        actions[argv[0]]()
        return 0
    if argv == ["status"]:
        bound = gadget.path.exists() and gadget.bound()
        tty = gadget.gadget_tty() if gadget.path.exists() else "-"
        print(f"gadget {gadget.path} bound={bound} gadget_tty={tty} host_tty={gadget.host_tty()}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
