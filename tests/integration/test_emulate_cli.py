"""`panoseti emulate-f9t` as a real subprocess: device line, answers over the pty, clean SIGTERM."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import serial
from pyubx2 import ERR_IGNORE, UBX_PROTOCOL, UBXMessage, UBXReader

from panoseti_appliance.ublox.emulator import f9tmessages as msg
from panoseti_appliance.ublox.ubxframes import FrameSplitter, RawFrame, build_frame

DEADLINE_S = 30.0
CAPTURE = Path(__file__).resolve().parents[1] / "data" / "ubx_packets.jsonl"


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "panoseti_appliance.cli.main", "emulate-f9t", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], DEADLINE_S)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("device: "):
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"no 'device: …' line; got {line!r}; stderr:\n{err}")
    return proc, line.removeprefix("device: ").rstrip("\n")


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=DEADLINE_S)
    return proc.returncode, out, err


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc, device = _start(
        "--link", str(tmp_path / "ublox-f9t"), "--epoch", "0.05", "--model", "ZED-F9T-10B",
        "--uid", "0123456789", "--nak-key", "CFG_TP_FREQ_TP2",
    )  # fmt: skip
    yield proc, device
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def _ask(device: str, message: UBXMessage, identity: str) -> Any:
    with serial.Serial(device, 115200, timeout=0.1, exclusive=True) as port:
        port.reset_input_buffer()
        port.write(message.serialize())
        reader = UBXReader(port, protfilter=UBX_PROTOCOL, quitonerror=ERR_IGNORE)
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            _, parsed = reader.read()
            if parsed is not None and parsed.identity == identity:
                return parsed
    raise AssertionError(f"no {identity} from {device}")


def test_prints_device_answers_and_exits_0_on_sigterm(
    emulator: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    proc, device = emulator
    link = tmp_path / "ublox-f9t"
    assert device == str(link)
    assert link.is_symlink()
    ver = _ask(device, UBXMessage("MON", "MON-VER", 2), "MON-VER")
    assert ver.extension_04.rstrip(b"\0") == b"MOD=ZED-F9T-10B"
    uid = _ask(device, UBXMessage("SEC", "SEC-UNIQID", 2), "SEC-UNIQID")
    assert f"{uid.uniqueId:010X}" == "0123456789"
    nak = _ask(device, UBXMessage.config_set(1, 0, [("CFG_TP_FREQ_TP2", 5)]), "ACK-NAK")
    assert nak.msgID == 0x8A

    rc, out, err = _stop(proc)
    assert rc == 0, err
    assert out == ""  # exactly one stdout line, already read
    assert "Traceback" not in err
    assert not os.path.lexists(link)


def test_sigint_also_exits_0(emulator: tuple[subprocess.Popen[str], str]) -> None:
    proc, _ = emulator
    rc, _, err = _stop(proc, signal.SIGINT)
    assert rc == 0, err


def test_tty_mode_serves_an_existing_tty_and_outlives_its_hang_up() -> None:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    proc, device = _start("--tty", path, "--epoch", "0.05")
    try:
        assert device == path
        poll = build_frame(*msg.MON_VER)
        splitter = FrameSplitter()
        frames: list[RawFrame] = []
        deadline = time.monotonic() + DEADLINE_S
        os.write(master, poll)
        while not frames and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                frames = splitter.feed(os.read(master, 4096))
        assert [(f.cls_id, f.msg_id) for f in frames] == [msg.MON_VER]  # no echo of the poll
        assert b"MOD=ZED-F9T\0" in frames[0].payload
    finally:
        os.close(master)  # hangs the emulator's tty up: it must keep running
    time.sleep(0.5)
    assert proc.poll() is None
    rc, out, err = _stop(proc)
    assert rc == 0, err
    assert out == ""
    assert "Traceback" not in err
    assert f"link {path} lost" in err


def test_replay_mode_serves_the_capture() -> None:
    proc, device = _start("--replay", str(CAPTURE), "--epoch", "0.05")
    try:
        tp = _ask(device, UBXMessage("MON", "MON-VER", 2), "TIM-TP")
        assert tp.week == 2379
    finally:
        rc, _, err = _stop(proc)
    assert rc == 0, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--uid", "xyz"], "--uid 'xyz' is not hexadecimal"),
        (["--epoch", "0"], "--epoch '0' must be a positive number"),
        (["--position", "1,2"], "--position '1,2' must be LAT,LON,HEIGHT_M"),
        (["--nak-key", "CFG_NOT_A_KEY"], "--nak-key 'CFG_NOT_A_KEY' is neither"),
        (["--replay", "/nonexistent/ubx.jsonl"], "/nonexistent/ubx.jsonl"),
        (["--tty", "/dev/null"], "/dev/null is not a terminal device"),
        (["--tty", "/nonexistent/ttyGS0"], "/nonexistent/ttyGS0"),
        (["--tty", "/dev/ttyGS0", "--link", "/tmp/f9t"], "not allowed with argument"),
    ],
)
def test_bad_arguments_exit_2_naming_the_option(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "panoseti_appliance.cli.main", "emulate-f9t", *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "device:" not in result.stdout


def test_bad_register_csv_exits_2_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "registers.csv"
    bad.write_text(
        "Configuration item,Key ID,Type,Scale,Unit,Default value,Description\n"
        "CFG-TP-FREQ_TP1,0x40050024,U4,,Hz,lots,frequency\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "panoseti_appliance.cli.main",
            "emulate-f9t",
            "--register-csv",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert result.returncode == 2
    assert f"register CSV {bad} line 2: Default value 'lots'" in result.stderr
