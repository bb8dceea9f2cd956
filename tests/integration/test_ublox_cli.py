"""The `panoseti ublox` CLI, init_on_start and shutdown, all as real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance._proto import ublox_control_pb2_grpc as pb_grpc
from panoseti_appliance.ublox.emulator import F9tEmulator
from tests.daemons import Daemon
from tests.integration.test_ublox_init import (
    UID,
    capture_streams,
    daemon,
    emulator,
    f9t_cfg,
    init_ok,
    rpc_error,
    stub,
    ubloxcontrol,
    wait_for,
)

__all__ = ["daemon", "emulator", "f9t_cfg", "stub"]  # fixtures used by this module

PANOSETI = Path(sys.executable).parent / "panoseti"


def panoseti(*args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PANOSETI), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def write_config(tmp_path: Path, cfg: dict[str, Any]) -> Path:
    """An f9t_config file in the original layout (general part + f9t_chips) for `cfg`'s chip."""
    general = {k: v for k, v in cfg.items() if k not in ("device", "f9t_uid", "position")}
    chip = {"f9t_uid": cfg["f9t_uid"], "device": cfg["device"], "position": cfg["position"]}
    path = tmp_path / "f9t_config.json5"
    path.write_text("// written by the test\n" + json.dumps({**general, "f9t_chips": [chip]}))
    return path


def test_cli_init_capture_poll(daemon: Daemon, f9t_cfg: dict[str, Any], tmp_path: Path) -> None:
    config = write_config(tmp_path, f9t_cfg)
    host = daemon.target
    done = panoseti(
        "ublox", "init", "--host", host, "--f9t-config", str(config), "--chip", UID.lower()
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        f"{host}: SUCCESS",
        "  F9T initialized, configured, and verified successfully.",
    ]

    done = panoseti("ublox", "capture", "--host", host, "TIM-TP", "--duration", "1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) >= 3
    assert all(f" {host} TIM-TP qErr=" in line for line in lines), lines

    done = panoseti("ublox", "capture", "--host", host, "NAV-TIMEUTC", "--json", "--duration", "1")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records
    assert {r["name"] for r in records} == {"NAV-TIMEUTC"}
    assert all(r["parsed_data"]["validUTC"] == 1 for r in records)

    done = panoseti("ublox", "poll", "--host", host, "SEC-UNIQID", "CFG_TP_FREQ_TP2")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert " SEC-UNIQID uniqueId=957838672316" in out
    assert "CFG_TP_FREQ_TP2=10000000" in out


def test_cli_errors_are_clear(daemon: Daemon, f9t_cfg: dict[str, Any], tmp_path: Path) -> None:
    config = write_config(tmp_path, f9t_cfg)
    done = panoseti(
        "ublox",
        "init",
        "--host",
        daemon.target,
        "--f9t-config",
        str(config),
        "--chip",
        "AAAAAAAAAA",
    )
    assert done.returncode == 2
    assert (
        f"{config}: --chip AAAAAAAAAA: no chip has uid AAAAAAAAAA; the chips are: DF03A241BC"
    ) in done.stderr
    done = panoseti("ublox", "capture", "--host", daemon.target, "(", "--duration", "5")
    assert done.returncode == 1
    assert "error: INVALID_ARGUMENT: invalid pattern '('" in done.stderr
    done = panoseti("ublox", "poll", "--host", daemon.target, "MON-VER")
    assert done.returncode == 1
    assert "error: FAILED_PRECONDITION: F9T is not initialized" in done.stderr
    # Capturing from a receiver nobody initialised ends at once instead of re-subscribing.
    done = panoseti("ublox", "capture", "--host", daemon.target, "TIM-TP", "--duration", "30")
    assert done.returncode == 1
    assert "error: FAILED_PRECONDITION: F9T is not initialized" in done.stderr
    assert "re-subscribing" not in done.stdout + done.stderr


def test_cli_init_reports_failure_status(
    daemon: Daemon, emulator: F9tEmulator, f9t_cfg: dict[str, Any], tmp_path: Path
) -> None:
    emulator.model = "ZED-F9P"
    config = write_config(tmp_path, f9t_cfg)
    done = panoseti(
        "ublox", "init", "--host", daemon.target, "--f9t-config", str(config), "--chip", UID
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{daemon.target}: FAILURE",
        "  Model ZED-F9P does not match expected prefix ZED-F9T.",
    ]


def test_shutdown_ends_streams_with_unavailable(
    daemon: Daemon, stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any]
) -> None:
    init_ok(stub, f9t_cfg)
    stream = stub.CaptureUblox(pb.CaptureUbloxRequest(patterns=["TIM-TP"]), timeout=60)
    assert next(stream).name == "TIM-TP"
    assert daemon.stop() == 0
    err = rpc_error(lambda: list(stream))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert err.details() == "Server is shutting down."


def test_init_on_start_from_the_configured_chip(emulator: F9tEmulator, tmp_path: Path) -> None:
    ublox = {
        "init_on_start": True,
        "apply_to_layers": ["RAM"],
        "cfg_key_settings": [
            {"key": "CFG_TP_FREQ_TP2", "value": 5_000_000},
            {"key": "CFG_MSGOUT_UBX_TIM_TP_USB", "value": 1},
        ],
        "chips": [{"uid": UID, "device": emulator.device_path}],
    }
    with ubloxcontrol(tmp_path / "daemon", ublox) as (_, stub):
        wait_for(lambda: capture_streams(stub), timeout=60, what="init_on_start")
        assert emulator.value("CFG_TP_FREQ_TP2") == 5_000_000


def test_daemon_refuses_a_bad_start_chip(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("ublox:\n  init_on_start: true\n")
    exe = Path(sys.executable).parent / "panoseti-ubloxcontrol"
    done = subprocess.run(
        [str(exe), "--config", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 78  # EX_CONFIG: the unit does not restart it
    assert "ublox.init_on_start: init_on_start needs a chip to initialise" in done.stderr
    config.write_text(
        "ublox:\n  init_on_start: true\n  chips: [{uid: DF03A241BC, device: /dev/null,\n"
        "    cfg_key_settings: [{key: CFG_TP_FREQ_TP1, value: 1.5}]}]\n"
    )
    done = subprocess.run(
        [str(exe), "--config", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 78
    assert (
        f"{config}:4: ublox.chips[0].cfg_key_settings[0].value: CFG_TP_FREQ_TP1: 1.5 is not an "
        "integer" in done.stderr
    )


def test_reflection_lists_the_service(daemon: Daemon) -> None:
    with daemon.channel() as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"ubloxcontrol.UbloxControl", "grpc.health.v1.Health"} <= services
