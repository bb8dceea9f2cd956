"""The daemon process itself: configuration errors, listeners, sd_notify and the watchdog."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import grpc
from google.protobuf import empty_pb2

from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from tests.daemons import env_overrides
from tests.integration.test_daqdata_support import daqdata

DAEMON = Path(sys.executable).parent / "panoseti-daqdata"


def test_invalid_config_is_rendered_and_exits_78_before_starting(tmp_path: Path) -> None:
    config = tmp_path / "panoseti.yaml"
    config.write_text("daqdata:\n  max_concurrent_rpcs: 0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANOSETI_")}
    env.update(
        env_overrides({"daqdata": {"hashpipe": {"socket_template": str(tmp_path / "{dp}.s")}}})
    )
    result = subprocess.run(
        [str(DAEMON), "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 78  # EX_CONFIG: RestartPreventExitStatus=78 in the unit
    assert "invalid configuration" in result.stderr
    assert "max_concurrent_rpcs" in result.stderr
    assert not list(tmp_path.glob("*.s"))  # nothing was started


def test_stale_unix_socket_is_replaced_and_serves(tmp_path: Path) -> None:
    path = tmp_path / "grpc" / "daqdata.sock"
    path.parent.mkdir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(path))  # closed without unlink: a stale socket file
    with daqdata(tmp_path) as d, grpc.insecure_channel(d.daemon.unix_target) as channel:
        stub = pb_grpc.DaqDataStub(channel)
        assert stub.Ping(empty_pb2.Empty(), timeout=10) == empty_pb2.Empty()
    assert not path.exists()  # removed on shutdown


def test_sd_notify_ready_status_watchdog_and_stopping(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(30)
        env = {"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "200000"}
        messages: list[str] = []

        def received(text: str) -> bool:
            while not any(text in m for m in messages):
                messages.append(notify.recv(4096).decode())
            return True

        with daqdata(tmp_path, extra_env=env):
            assert received("READY=1")
            ready = next(m for m in messages if "READY=1" in m)
            assert "STATUS=hp_io RUNNING" in ready
            # Pinged from the event loop every WATCHDOG_USEC/2.
            assert received("WATCHDOG=1")
        assert received("STOPPING=1")
