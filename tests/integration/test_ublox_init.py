"""InitF9t against the pty ZED-F9T emulator, daemon as a subprocess (docs/ublox.md).

The fixtures here (emulator, daemon, stub, config) are shared by the other test_ublox_* files.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance._proto import ublox_control_pb2_grpc as pb_grpc
from panoseti_appliance.ublox.client import chip_config, load_f9t_config, to_struct
from panoseti_appliance.ublox.emulator import F9tEmulator
from panoseti_appliance.ublox.values import normalise_key
from tests.daemons import Daemon, free_tcp_port, running_daemon, start_daemon

DATA = Path(__file__).resolve().parents[1] / "data"
SHIPPED = DATA / "f9t_config.json5"
UID = "DF03A241BC"
EPOCH_S = 0.1
RPC_TIMEOUT = 30.0


def key_id(name: str) -> int:
    return normalise_key(name).key_id


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[F9tEmulator]:
    emu = F9tEmulator(epoch_s=EPOCH_S, link=tmp_path / "ublox-f9t")
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    port = free_tcp_port()
    settings = {
        "ublox": {"listen": [f"127.0.0.1:{port}", f"unix://{tmp_path}/ublox.sock"]},
        "logging": {"level": "debug"},
    }
    d = start_daemon("panoseti-ubloxcontrol", tmp_path / "daemon", settings, f"127.0.0.1:{port}")
    try:
        yield d
    finally:
        d.stop()


@contextlib.contextmanager
def ubloxcontrol(
    workdir: Path, ublox: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> Iterator[tuple[Daemon, pb_grpc.UbloxControlStub]]:
    """A daemon of its own on a free loopback port, for a test that needs these `ublox` settings
    (and `extra` sections) from the start: the daemon and a stub on it."""
    port = free_tcp_port()
    settings = {"ublox": {"listen": [f"127.0.0.1:{port}"], **ublox}, **(extra or {})}
    with (
        running_daemon("panoseti-ubloxcontrol", workdir, settings, f"127.0.0.1:{port}") as d,
        d.channel() as channel,
    ):
        yield d, pb_grpc.UbloxControlStub(channel)


@pytest.fixture
def stub(daemon: Daemon) -> Iterator[pb_grpc.UbloxControlStub]:
    with daemon.channel() as channel:
        yield pb_grpc.UbloxControlStub(channel)


@pytest.fixture
def f9t_cfg(emulator: F9tEmulator) -> dict[str, Any]:
    """The shipped example config merged for its chip, pointed at the emulator."""
    cfg = chip_config(load_f9t_config(SHIPPED), UID)
    cfg["device"] = emulator.device_path
    return cfg


def init(
    stub: pb_grpc.UbloxControlStub, cfg: dict[str, Any], force: bool = False
) -> pb.InitF9tResponse:
    request = pb.InitF9tRequest(f9t_config=to_struct(cfg), force_init=force)
    reply: pb.InitF9tResponse = stub.InitF9t(request, timeout=RPC_TIMEOUT)
    return reply


def init_ok(stub: pb_grpc.UbloxControlStub, cfg: dict[str, Any], force: bool = False) -> None:
    reply = init(stub, cfg, force)
    assert reply.init_status == pb.InitF9tResponse.SUCCESS, reply.message


def rpc_error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    err: grpc.RpcError = info.value
    return err


def wait_for(predicate: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def capture_streams(stub: pb_grpc.UbloxControlStub) -> bool:
    """True once a CaptureUblox stream yields data (the receiver is initialised and running)."""
    try:
        first = next(stub.CaptureUblox(pb.CaptureUbloxRequest(), timeout=5))
    except grpc.RpcError:
        return False
    return bool(first.type == pb.CaptureUbloxResponse.DATA)


# ---- tests ---------------------------------------------------------------------------------------


def test_shipped_config_initialises_and_verifies(
    stub: pb_grpc.UbloxControlStub, emulator: F9tEmulator, f9t_cfg: dict[str, Any]
) -> None:
    reply = init(stub, f9t_cfg)
    assert reply.init_status == pb.InitF9tResponse.SUCCESS, reply.message
    lines = reply.message.splitlines()
    assert lines[0] == "F9T initialized, configured, and verified successfully."
    assert "ZED-F9T" in lines[1]
    assert "TIM 2.20" in lines[1]
    assert UID in lines[1]
    echo = MessageToDict(reply.f9t_config)
    assert echo["f9t_uid"] == UID
    assert list(echo["apply_to_layers"]) == ["RAM", "BBR"]
    assert len(echo["cfg_key_settings"]) == 40
    assert "CFG_TP_ANT_CABLEDELAY" in {s["key"] for s in echo["cfg_key_settings"]}
    # The receiver now holds the configuration on both layers written.
    for layer in ("RAM", "BBR"):
        assert emulator.value("CFG_TP_FREQ_TP2", layer) == 10_000_000
        assert emulator.value("CFG_TMODE_LAT", layer) == 374219999
        assert emulator.value("CFG_TMODE_HEIGHT_HP", layer) == 50
    assert abs(emulator.value("CFG_TP_DUTY_TP1") - 0.01) < 1e-12
    sent = [identity for identity, _ in emulator.received]
    assert sent[:2] == ["MON-VER", "SEC-UNIQID"]
    assert sent.count("CFG-VALSET") == 2
    assert sent.count("CFG-VALGET") == 1


def test_uid_compare_is_case_insensitive(
    stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any]
) -> None:
    f9t_cfg["f9t_uid"] = UID.lower()
    init_ok(stub, f9t_cfg)


def test_model_and_uid_only_with_empty_settings(
    stub: pb_grpc.UbloxControlStub, emulator: F9tEmulator, f9t_cfg: dict[str, Any]
) -> None:
    f9t_cfg["cfg_key_settings"] = []
    del f9t_cfg["position"]
    init_ok(stub, f9t_cfg)
    assert "CFG-VALSET" not in [identity for identity, _ in emulator.received]


def test_wrong_model_fails(
    stub: pb_grpc.UbloxControlStub, emulator: F9tEmulator, f9t_cfg: dict[str, Any]
) -> None:
    emulator.model = "ZED-F9P"
    reply = init(stub, f9t_cfg)
    assert reply.init_status == pb.InitF9tResponse.FAILURE
    assert reply.message == "Model ZED-F9P does not match expected prefix ZED-F9T."
    assert "CFG-VALSET" not in [identity for identity, _ in emulator.received]


def test_wrong_uid_fails(stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any]) -> None:
    f9t_cfg["f9t_uid"] = "AAAAAAAAAA"
    reply = init(stub, f9t_cfg)
    assert reply.init_status == pb.InitF9tResponse.FAILURE
    assert reply.message == "Detected F9T UID DF03A241BC does not match client UID AAAAAAAAAA."


def test_nak_fails_and_says_what_was_applied(
    stub: pb_grpc.UbloxControlStub, emulator: F9tEmulator, f9t_cfg: dict[str, Any]
) -> None:
    emulator.nak_keys = {key_id("CFG_TP_FREQ_TP2")}
    reply = init(stub, f9t_cfg)
    assert reply.init_status == pb.InitF9tResponse.FAILURE
    assert reply.message.startswith("CFG-VALSET 2/2 (keys CFG_TMODE_MODE, ")
    assert "CFG_TP_FREQ_TP2" in reply.message
    assert "NAKed; nothing of this message was applied; groups 1 (19 keys) stay applied." in (
        reply.message
    )
    assert emulator.value("CFG_SIGNAL_GPS_L5_ENA") == 0  # group 1 was applied
    # After a failure the receiver state is idle.
    err = rpc_error(lambda: next(iter(stub.CaptureUblox(pb.CaptureUbloxRequest(), timeout=10))))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details() == "F9T is not initialized or I/O is not running."


def test_verification_mismatch_lists_each_key(
    stub: pb_grpc.UbloxControlStub, emulator: F9tEmulator, f9t_cfg: dict[str, Any]
) -> None:
    emulator.mismatch = {key_id("CFG_TP_FREQ_TP1"): 2, key_id("CFG_TP_DUTY_TP2"): 25.0}
    reply = init(stub, f9t_cfg)
    assert reply.init_status == pb.InitF9tResponse.FAILURE
    assert reply.message.splitlines() == [
        "Configuration verification failed for 2 items on layer RAM:",
        "Key: CFG_TP_FREQ_TP1, Wanted: 1, Got: 2",
        "Key: CFG_TP_DUTY_TP2, Wanted: 50.0, Got: 25.0",
    ]


@pytest.mark.parametrize("fault", ["silent", "corrupt_checksums"])
def test_a_device_that_is_not_understood_fails_as_silent(
    stub: pb_grpc.UbloxControlStub, emulator: F9tEmulator, f9t_cfg: dict[str, Any], fault: str
) -> None:
    """A receiver that says nothing, or only frames with bad checksums, never answers MON-VER."""
    setattr(emulator, fault, True)
    reply = init(stub, f9t_cfg)
    assert reply.init_status == pb.InitF9tResponse.FAILURE
    assert reply.message == "No MON-VER response"
    # The port was closed again: a second, answered init works.
    setattr(emulator, fault, False)
    init_ok(stub, f9t_cfg)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"verify_layer": "FLASH"},
            "verify_layer: verify_layer FLASH is not one of the layers written (RAM, BBR)",
        ),
        (
            {"apply_to_layers": ["RAM", "ROM"]},
            "apply_to_layers[1]: 'ROM' is not one of RAM, BBR, FLASH",
        ),
        (
            {"cfg_key_settings": [{"key": "CFG_NOT_A_KEY", "value": 1}]},
            "cfg_key_settings[0].key: Undefined configuration database key CFG_NOT_A_KEY",
        ),
        (
            {"cfg_key_settings": [{"key": "CFG_TP_FREQ_TP1", "value": 1.9}]},
            "cfg_key_settings[0].value: CFG_TP_FREQ_TP1: 1.9 is not an integer",
        ),
        ({"f9t_uid": None}, "f9t_uid: required; give the receiver's SEC-UNIQID as 10 hex"),
        ({"device": None}, "device: required"),
    ],
)
def test_invalid_config_touches_nothing(
    stub: pb_grpc.UbloxControlStub,
    emulator: F9tEmulator,
    f9t_cfg: dict[str, Any],
    change: dict[str, Any],
    expected: str,
) -> None:
    f9t_cfg.update(change)
    f9t_cfg = {k: v for k, v in f9t_cfg.items() if v is not None}
    reply = init(stub, f9t_cfg)
    assert reply.init_status == pb.InitF9tResponse.INVALID_CONFIG
    assert any(line.startswith(expected) for line in reply.message.splitlines()), reply.message
    assert emulator.received == []


def test_all_problems_are_listed(stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any]) -> None:
    f9t_cfg["verify_layer"] = "DISK"
    f9t_cfg["cfg_key_settings"] = [{"key": "CFG_TP_FREQ_TP1", "value": "x"}]
    reply = init(stub, f9t_cfg)
    assert reply.init_status == pb.InitF9tResponse.INVALID_CONFIG
    assert len(reply.message.splitlines()) == 2


def test_missing_device_path_is_unavailable(
    stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any], tmp_path: Path
) -> None:
    f9t_cfg["device"] = str(tmp_path / "no-such-tty")
    err = rpc_error(lambda: init(stub, f9t_cfg))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert err.details() == f"Device path {tmp_path / 'no-such-tty'} does not exist."


def test_regular_file_is_not_a_character_device(
    stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "plain-file"
    path.write_text("")
    f9t_cfg["device"] = str(path)
    reply = init(stub, f9t_cfg)
    assert reply.init_status == pb.InitF9tResponse.INVALID_CONFIG
    assert reply.message == f"Device path {path} is not a character device"


def test_nmea_and_garbage_between_frames_are_skipped(
    stub: pb_grpc.UbloxControlStub, emulator: F9tEmulator, f9t_cfg: dict[str, Any]
) -> None:
    emulator.noise = True
    init_ok(stub, f9t_cfg)
    stream = stub.CaptureUblox(pb.CaptureUbloxRequest(), timeout=RPC_TIMEOUT)
    names = {next(stream).name for _ in range(6)}
    stream.cancel()
    assert names == {"TIM-TP", "NAV-TIMEUTC"}
