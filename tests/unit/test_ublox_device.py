"""When the daemon counts the receiver's device node as there (the re-open loop waits otherwise)."""

from __future__ import annotations

from pathlib import Path

from panoseti_appliance.ublox.server.servicer import device_present


def test_a_device_node_the_kernel_has_removed_is_not_present(tmp_path: Path) -> None:
    node = tmp_path / "ttyACM0"
    node.write_text("")  # a stand-in file: only the mode matters here
    node.chmod(0o660)
    assert device_present(str(node))
    node.chmod(0o000)  # what devtmpfs leaves of a removed node before unlinking it
    assert not device_present(str(node))
    assert not device_present(str(tmp_path / "gone"))
    link = tmp_path / "ublox-f9t"
    link.symlink_to(node)
    assert not device_present(str(link))  # a udev symlink to it, likewise
