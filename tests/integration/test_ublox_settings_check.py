"""One rule for F9T settings: `panoseti config check`, the daemon's start and InitF9t refuse the
same settings with the same message (docs/ublox.md, "One set of rules").
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance._proto import ublox_control_pb2_grpc as pb_grpc
from tests.integration.test_ublox_init import UID, daemon, init, stub

__all__ = ["daemon", "stub"]  # fixtures used by this module

BIN = Path(sys.executable).parent
#: The settings of the issue: a key the receiver does not have, and a time-pulse definition that
#: is neither PERIOD (0) nor FREQ (1).
SETTINGS = [{"key": "CFG_NOT_A_KEY", "value": 1}, {"key": "CFG_TP_PULSE_DEF", "value": 99}]
EXPECTED = [
    "cfg_key_settings[0].key: Undefined configuration database key CFG_NOT_A_KEY; use a name of "
    "the u-blox interface description such as CFG_TP_FREQ_TP1, or a key id such as 0x40050024",
    "cfg_key_settings[1].value: CFG_TP_PULSE_DEF: 99 is not one of 0 (PERIOD), 1 (FREQ) (type E1)",
]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOSETI_", "NOTIFY_"))}
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _bad_config(tmp_path: Path) -> Path:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "ublox:\n"
        "  cfg_key_settings: [{key: CFG_NOT_A_KEY, value: 1}, {key: CFG_TP_PULSE_DEF, value: 99}]\n"
    )
    return config


def test_config_check_names_each_field_and_the_fix(tmp_path: Path) -> None:
    config = _bad_config(tmp_path)
    check = _run("panoseti", "config", "check", "--config", str(config))
    assert check.returncode == 1
    assert check.stdout == ""
    assert check.stderr.splitlines() == [
        "invalid configuration (2 problems):",
        *(f"{config}:2: ublox.{line}" for line in EXPECTED),
    ]


def test_the_daemon_refuses_to_start_with_the_same_text(tmp_path: Path) -> None:
    config = _bad_config(tmp_path)
    check = _run("panoseti", "config", "check", "--config", str(config))
    started = _run("panoseti-ubloxcontrol", "--config", str(config))
    assert started.returncode == 78  # EX_CONFIG: systemd does not restart it
    assert started.stderr == f"panoseti-ubloxcontrol: {check.stderr}"
    assert "Traceback" not in started.stderr


def test_init_f9t_refuses_the_same_settings_in_the_same_words(
    stub: pb_grpc.UbloxControlStub,
) -> None:
    reply = init(stub, {"device": "/dev/null", "f9t_uid": UID, "cfg_key_settings": SETTINGS})
    assert reply.init_status == pb.InitF9tResponse.INVALID_CONFIG
    assert reply.message.splitlines() == EXPECTED
