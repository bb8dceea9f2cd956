"""panoseti-daqdata.socket and .service under a real systemd (a booted Debian container)."""

from __future__ import annotations

from pathlib import Path

from tests.system.harness.container import PAYLOAD_DIR, boot
from tests.system.harness.rootfs import Node

HERE = Path(__file__).parent
SCENARIOS = HERE / "scenarios"
NODE_HELPERS = {f"{PAYLOAD_DIR}/node.py": HERE / "payload" / "node.py"}


def test_socket_activation_ready_status_stream_and_journal_fields(node_root: Node) -> None:
    result = boot(node_root, SCENARIOS / "daqdata_activation.py", files=NODE_HELPERS, timeout=180)
    result.assert_passed()
    # systemd's own view: the socket was listening before the service was started by it.
    said = result.messages(UNIT="panoseti-daqdata.socket")
    assert any(m.startswith("Listening on") for m in said), said


def test_restart_keeps_the_producer_connected_and_the_stream_resumes(node_root: Node) -> None:
    result = boot(node_root, SCENARIOS / "daqdata_restart.py", files=NODE_HELPERS, timeout=180)
    result.assert_passed()


def test_watchdog_kills_a_stopped_daemon_and_a_crash_is_restarted(node_root: Node) -> None:
    result = boot(node_root, SCENARIOS / "daqdata_watchdog.py", files=NODE_HELPERS, timeout=180)
    result.assert_passed()


def test_a_broken_configuration_fails_without_a_restart_loop(node_root: Node) -> None:
    result = boot(node_root, SCENARIOS / "daqdata_bad_config.py", files=NODE_HELPERS, timeout=180)
    result.assert_passed()


GRPC_SOCKET_DROPIN = b"""[Socket]
# The gRPC unix socket held by systemd as well: a client's first call starts the daemon.
ListenStream=/run/panoseti/daqdata.sock
"""


def test_the_grpc_socket_can_be_socket_activated_too(node_root: Node) -> None:
    files: dict[str, bytes | Path] = {
        **NODE_HELPERS,
        "/etc/systemd/system/panoseti-daqdata.socket.d/grpc.conf": GRPC_SOCKET_DROPIN,
    }
    result = boot(node_root, SCENARIOS / "daqdata_grpc_activation.py", files=files, timeout=180)
    result.assert_passed()
