"""The emulated ZED-F9T, driven over its real pty with pyserial and pyubx2-built messages."""

from __future__ import annotations

import base64
import calendar
import itertools
import json
import os
import stat
import termios
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import serial
from pyubx2 import ERR_IGNORE, UBX_CONFIG_DATABASE, UBX_PROTOCOL, UBXMessage, UBXReader

from panoseti_appliance.ublox.emulator import F9tEmulator
from panoseti_appliance.ublox.ubxframes import FrameSplitter, build_frame

DATA = Path(__file__).resolve().parents[1] / "data"
CAPTURE = DATA / "ubx_packets.jsonl"
EPOCH_S = 0.05
WAIT_S = 5.0  # generous deadline for anything the emulator must send
VALSET, VALGET = 0x8A, 0x8B
RAM, BBR, FLASH = 1, 2, 4
POLL_RAM, POLL_BBR, POLL_FLASH, POLL_DEFAULT = 0, 1, 2, 7
TIM_TP_USB = "CFG_MSGOUT_UBX_TIM_TP_USB"
NAV_TIMEUTC_USB = "CFG_MSGOUT_UBX_NAV_TIMEUTC_USB"
NAV_PVT_USB = "CFG_MSGOUT_UBX_NAV_PVT_USB"
#: One key of each value type (U1, I4, R8, R4, L, X1, X8, E1, U2, I1, U8) and a value for it.
TYPED_VALUES: dict[str, Any] = {
    "CFG_NAVSPG_INFIL_MINELEV": -5,  # I1
    "CFG_GEOFENCE_FENCE1_LAT": -374219999,  # I4
    "CFG_TP_DUTY_LOCK_TP1": 0.01,  # R8
    "CFG_NAVSPG_USRDAT_DX": 1.5,  # R4
    "CFG_BATCH_ENABLE": 1,  # L
    "CFG_INFMSG_NMEA_UART1": b"\x07",  # X1
    "CFG_NAVMASK_EL_MASK_000_020": bytes(range(1, 9)),  # X8
    "CFG_HW_ANT_SUP_ENGINE": 1,  # E1
    "CFG_BATCH_MAXENTRIES": 65000,  # U2
    "CFG_MSGOUT_UBX_TIM_TP_UART1": 3,  # U1
    "CFG_PMP_UNIQUE_WORD": 2**63 + 5,  # U8
}


class Client:
    """The host side: a pyserial port on the emulator's device and a UBX reader on it."""

    def __init__(self, path: str) -> None:
        self.port = serial.Serial(path, 115200, timeout=0.1, exclusive=True)
        self.port.reset_input_buffer()
        self.reader = UBXReader(self.port, protfilter=UBX_PROTOCOL, quitonerror=ERR_IGNORE)

    def close(self) -> None:
        self.port.close()

    def send(self, message: UBXMessage | bytes) -> None:
        self.port.reset_input_buffer()
        self.port.write(message if isinstance(message, bytes) else message.serialize())

    def frames(self, seconds: float) -> list[tuple[bytes, Any]]:
        """Every UBX frame arriving within `seconds` (a window, for checking absence)."""
        out = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            raw, parsed = self.reader.read()
            if raw is not None:
                out.append((raw, parsed))
        return out

    def wait_for(
        self, identity: str, match: Callable[[Any], bool] = lambda p: True, timeout: float = WAIT_S
    ) -> tuple[bytes, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            raw, parsed = self.reader.read()
            if parsed is not None and parsed.identity == identity and match(parsed):
                return raw, parsed
        raise AssertionError(f"no {identity} within {timeout} s")

    def ack(self, msg_id: int) -> bool:
        """True for ACK-ACK, False for ACK-NAK answering CFG message `msg_id`."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            _, parsed = self.reader.read()
            if (
                parsed is not None
                and parsed.identity in ("ACK-ACK", "ACK-NAK")
                and (parsed.clsID, parsed.msgID) == (0x06, msg_id)
            ):
                return bool(parsed.identity == "ACK-ACK")
        raise AssertionError(f"no ACK for CFG 0x{msg_id:02x} within {WAIT_S} s")

    def valset(self, layers: int, items: list[tuple[str | int, Any]], txn: int = 0) -> bool:
        self.send(UBXMessage.config_set(layers, txn, items))
        return self.ack(VALSET)

    def valget(self, layer: int, keys: Sequence[str | int]) -> Any | None:
        """The parsed CFG-VALGET answer, or None if NAKed; checks the trailing ACK-ACK."""
        self.send(UBXMessage.config_poll(layer, 0, keys))
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            _, parsed = self.reader.read()
            if parsed is None:
                continue
            if parsed.identity == "CFG-VALGET":
                assert self.ack(VALGET) is True
                return parsed
            if parsed.identity == "ACK-NAK" and parsed.msgID == VALGET:
                return None
        raise AssertionError("no VALGET answer")


@pytest.fixture
def emu() -> Iterator[F9tEmulator]:
    with F9tEmulator(epoch_s=EPOCH_S) as emulator:
        yield emulator


@pytest.fixture
def client(emu: F9tEmulator) -> Iterator[Client]:
    host = Client(emu.device_path)
    yield host
    host.close()


def poll(cls_name: str, msg_name: str) -> UBXMessage:
    return UBXMessage(cls_name, msg_name, 2)


def key_id(name: str) -> int:
    return int(UBX_CONFIG_DATABASE[name][0])


def raw_valset(layers: int, pairs: bytes, version: int = 0, action: int = 0) -> bytes:
    return build_frame(0x06, VALSET, bytes((version, layers, action, 0)) + pairs)


def capture_frames() -> list[bytes]:
    lines = CAPTURE.read_text().splitlines()
    return [base64.b64decode(json.loads(line)["payload_b64"]) for line in lines]


# -- identity ---------------------------------------------------------------------------------


def test_device_is_a_raw_character_device(emu: F9tEmulator) -> None:
    assert stat.S_ISCHR(os.stat(emu.device_path).st_mode)
    fd = os.open(emu.device_path, os.O_RDWR | os.O_NOCTTY)
    try:
        lflag = termios.tcgetattr(fd)[3]
        assert not lflag & (termios.ECHO | termios.ICANON)
    finally:
        os.close(fd)


def test_mon_ver_reports_the_model_and_firmware(emu: F9tEmulator, client: Client) -> None:
    client.send(poll("MON", "MON-VER"))
    _, ver = client.wait_for("MON-VER")
    extensions = [getattr(ver, f"extension_{i:02d}").rstrip(b"\0") for i in range(1, 8)]
    assert b"MOD=ZED-F9T" in extensions
    assert b"FWVER=TIM 2.20" in extensions
    assert b"PROTVER=29.20" in extensions
    assert ver.hwVersion.rstrip(b"\0") == b"00190000"

    emu.model = "ZED-F9P"
    client.send(poll("MON", "MON-VER"))
    _, ver = client.wait_for("MON-VER")
    assert ver.extension_04.rstrip(b"\0") == b"MOD=ZED-F9P"


def test_sec_uniqid_uses_the_little_endian_uid_convention(emu: F9tEmulator, client: Client) -> None:
    client.send(poll("SEC", "SEC-UNIQID"))
    raw, uid = client.wait_for("SEC-UNIQID")
    assert raw[6 + 4 : 6 + 9] == bytes.fromhex("bc41a203df")
    assert uid.version == 1
    assert uid.uniqueId == 0xDF03A241BC

    emu.unique_id = 0xAAAAAAAAAA
    client.send(poll("SEC", "SEC-UNIQID"))
    _, uid = client.wait_for("SEC-UNIQID")
    assert f"{uid.uniqueId:010X}" == "AAAAAAAAAA"


# -- VALSET / VALGET --------------------------------------------------------------------------


def test_valset_then_valget_round_trips_every_value_type(emu: F9tEmulator, client: Client) -> None:
    assert client.valset(RAM, list(TYPED_VALUES.items())) is True
    got = client.valget(POLL_RAM, list(TYPED_VALUES))
    assert got is not None
    assert got.version == 1
    assert got.layer == POLL_RAM
    for name, wanted in TYPED_VALUES.items():
        value = getattr(got, name)
        if name == "CFG_NAVSPG_USRDAT_DX":  # float32 keeps about 7 digits
            assert value == pytest.approx(wanted, rel=1e-6)
        else:
            assert value == wanted, name
        stored = emu.value(name)
        assert stored == (pytest.approx(wanted, rel=1e-6) if isinstance(wanted, float) else wanted)
    assert emu.value(key_id("CFG_GEOFENCE_FENCE1_LAT")) == -374219999


def test_valget_layers_ram_default_bbr_flash(emu: F9tEmulator, client: Client) -> None:
    keys = ["CFG_TP_FREQ_TP1", "CFG_TP_DUTY_TP1"]
    assert client.valget(POLL_BBR, keys) is None  # nothing stored: NAK
    assert client.valget(POLL_FLASH, keys) is None
    ram = client.valget(POLL_RAM, keys)
    assert ram is not None
    assert ram.CFG_TP_FREQ_TP1 == 0

    assert client.valset(RAM | BBR, [("CFG_TP_FREQ_TP1", 7)]) is True
    bbr = client.valget(POLL_BBR, keys)
    assert bbr is not None
    assert bbr.layer == POLL_BBR
    assert bbr.CFG_TP_FREQ_TP1 == 7
    assert not hasattr(bbr, "CFG_TP_DUTY_TP1")
    assert client.valget(POLL_FLASH, keys) is None
    default = client.valget(POLL_DEFAULT, keys)
    assert default is not None
    assert default.CFG_TP_FREQ_TP1 == 0
    assert emu.value("CFG_TP_FREQ_TP1", "BBR") == 7
    assert emu.value("CFG_TP_FREQ_TP1", "FLASH") is None


def test_transaction_applies_only_at_commit(emu: F9tEmulator, client: Client) -> None:
    assert client.valset(RAM, [("CFG_TP_FREQ_TP1", 1)], txn=1) is True
    assert client.valset(RAM, [("CFG_TP_FREQ_TP2", 2)], txn=2) is True
    assert emu.value("CFG_TP_FREQ_TP1") == 0
    assert emu.store.transaction_open
    assert client.valset(RAM, [("CFG_TP_DUTY_TP2", 50.0)], txn=3) is True
    assert emu.value("CFG_TP_FREQ_TP1") == 1
    assert emu.value("CFG_TP_FREQ_TP2") == 2
    assert emu.value("CFG_TP_DUTY_TP2") == 50.0
    assert not emu.store.transaction_open


def test_transaction_start_again_restarts_staging(emu: F9tEmulator, client: Client) -> None:
    assert client.valset(RAM, [("CFG_TP_FREQ_TP1", 1)], txn=1) is True
    assert client.valset(RAM, [("CFG_TP_FREQ_TP2", 2)], txn=1) is True
    assert client.valset(RAM, [], txn=3) is True
    assert emu.value("CFG_TP_FREQ_TP1") == 0
    assert emu.value("CFG_TP_FREQ_TP2") == 2


@pytest.mark.parametrize("action", [2, 3], ids=["ongoing", "commit"])
def test_transaction_without_start_is_naked(emu: F9tEmulator, client: Client, action: int) -> None:
    assert client.valset(RAM, [("CFG_TP_FREQ_TP1", 1)], txn=action) is False
    assert emu.value("CFG_TP_FREQ_TP1") == 0


def test_layer_change_inside_a_transaction_naks_and_cancels(
    emu: F9tEmulator, client: Client
) -> None:
    assert client.valset(RAM, [("CFG_TP_FREQ_TP1", 1)], txn=1) is True
    assert client.valset(RAM | BBR, [("CFG_TP_FREQ_TP2", 2)], txn=2) is False
    assert not emu.store.transaction_open
    assert client.valset(RAM, [("CFG_TP_FREQ_TP2", 2)], txn=3) is False  # nothing to commit
    assert emu.value("CFG_TP_FREQ_TP1") == 0
    assert emu.value("CFG_TP_FREQ_TP2") == 0


def test_nak_inside_a_transaction_cancels_it(emu: F9tEmulator, client: Client) -> None:
    emu.nak_keys = {key_id("CFG_TP_FREQ_TP2")}
    assert client.valset(RAM, [("CFG_TP_FREQ_TP1", 1)], txn=1) is True
    assert client.valset(RAM, [("CFG_TP_FREQ_TP2", 2)], txn=2) is False
    assert client.valset(RAM, [("CFG_TP_DUTY_TP1", 5.0)], txn=3) is False
    assert emu.value("CFG_TP_FREQ_TP1") == 0
    assert emu.value("CFG_TP_DUTY_TP1") == 0.0


def test_valget_cancels_an_open_transaction(emu: F9tEmulator, client: Client) -> None:
    assert client.valset(RAM, [("CFG_TP_FREQ_TP1", 1)], txn=1) is True
    assert client.valget(POLL_RAM, ["CFG_TP_FREQ_TP1"]) is not None
    assert client.valset(RAM, [], txn=3) is False
    assert emu.value("CFG_TP_FREQ_TP1") == 0


def test_v0_valset_to_several_layers(emu: F9tEmulator, client: Client) -> None:
    assert client.valset(RAM | BBR | FLASH, [("CFG_TP_TP1_ENA", 1)]) is True
    assert [emu.value("CFG_TP_TP1_ENA", layer) for layer in ("RAM", "BBR", "FLASH")] == [1, 1, 1]


def _pairs(count: int) -> bytes:
    names = [n for n, (_, t) in UBX_CONFIG_DATABASE.items() if t == "U001"][:count]
    return b"".join(key_id(n).to_bytes(4, "little") + b"\x01" for n in names)


@pytest.mark.parametrize(
    ("frame", "msg_id"),
    [
        (raw_valset(RAM, _pairs(65)), VALSET),  # > 64 pairs
        (raw_valset(0, _pairs(1)), VALSET),  # no layer bit
        (raw_valset(RAM, (0x10FF0F01).to_bytes(4, "little") + b"\x01"), VALSET),  # unknown key
        (raw_valset(RAM, _pairs(1)[:-1]), VALSET),  # truncated value
        (raw_valset(RAM, _pairs(1), version=2), VALSET),  # unknown version
        (build_frame(0x06, VALGET, bytes(4) + _pairs(65)[:-1]), VALGET),  # malformed key list
        (
            build_frame(
                0x06, VALGET, bytes(4) + b"".join(_pairs(65)[i : i + 4] for i in range(0, 325, 5))
            ),
            VALGET,
        ),  # > 64 keys
        (build_frame(0x06, VALGET, bytes((0, 3, 0, 0)) + _pairs(1)[:4]), VALGET),  # bad layer
        (build_frame(0x06, 0x08, b""), 0x08),  # any other CFG message (CFG-RATE poll)
    ],
    ids=[
        "65-pairs",
        "no-layer",
        "unknown-key",
        "truncated",
        "version",
        "valget-malformed",
        "valget-65-keys",
        "valget-layer",
        "cfg-rate",
    ],
)
def test_bad_cfg_messages_are_naked(
    emu: F9tEmulator, client: Client, frame: bytes, msg_id: int
) -> None:
    client.send(frame)
    assert client.ack(msg_id) is False
    assert emu.value("CFG_TP_FREQ_TP1") == 0


def test_64_pairs_are_accepted(emu: F9tEmulator, client: Client) -> None:
    client.send(raw_valset(RAM, _pairs(64)))
    assert client.ack(VALSET) is True


def test_bad_checksum_is_dropped_silently(emu: F9tEmulator, client: Client) -> None:
    good = UBXMessage.config_set(RAM, 0, [("CFG_TP_FREQ_TP1", 9)]).serialize()
    client.send(good[:-1] + bytes((good[-1] ^ 0xFF,)))
    client.port.write(poll("MON", "MON-VER").serialize())
    frames = [p.identity for _, p in client.frames(0.5) if p is not None]
    assert frames == ["MON-VER"]
    assert emu.value("CFG_TP_FREQ_TP1") == 0
    assert [identity for identity, _ in emu.received] == ["MON-VER"]


def test_received_records_every_valid_host_frame(emu: F9tEmulator, client: Client) -> None:
    sent = [
        poll("MON", "MON-VER").serialize(),
        UBXMessage.config_poll(0, 0, ["CFG_TP_FREQ_TP1"]).serialize(),
    ]
    client.send(sent[0])
    client.wait_for("MON-VER")
    client.send(sent[1])
    client.ack(VALGET)
    assert emu.received == [("MON-VER", sent[0]), ("CFG-VALGET", sent[1])]


# -- periodic output --------------------------------------------------------------------------


def test_msgout_rates_start_and_stop_periodic_messages(emu: F9tEmulator, client: Client) -> None:
    assert not [p for _, p in client.frames(5 * EPOCH_S) if p is not None]  # off by default
    assert client.valset(RAM, [(TIM_TP_USB, 1), (NAV_TIMEUTC_USB, 2), (NAV_PVT_USB, 1)])
    tps = [client.wait_for("TIM-TP")[1] for _ in range(4)]
    utcs = [client.wait_for("NAV-TIMEUTC")[1] for _ in range(3)]
    client.wait_for("NAV-PVT")
    assert {b.towMS - a.towMS for a, b in itertools.pairwise(tps)} == {1000}
    assert {b.iTOW - a.iTOW for a, b in itertools.pairwise(utcs)} == {2000}  # every 2nd

    assert client.valset(RAM, [(TIM_TP_USB, 0), (NAV_TIMEUTC_USB, 0), (NAV_PVT_USB, 0)])
    # Nothing is sent after the ACK: the rates are read under the same lock as VALSET applies.
    assert not [p for _, p in client.frames(10 * EPOCH_S) if p is not None]


def test_msgout_comes_from_ram_only(emu: F9tEmulator, client: Client) -> None:
    assert client.valset(BBR, [(TIM_TP_USB, 1)])
    assert not [p for _, p in client.frames(5 * EPOCH_S) if p is not None]


def test_tim_tp_comes_first_in_each_epoch(emu: F9tEmulator, client: Client) -> None:
    assert client.valset(RAM, [(NAV_TIMEUTC_USB, 1), (TIM_TP_USB, 1)])
    client.wait_for("NAV-TIMEUTC")
    names = [p.identity for _, p in client.frames(10 * EPOCH_S) if p is not None]
    assert len(names) >= 4
    pairs = names[: len(names) // 2 * 2]
    assert pairs[0::2] == ["TIM-TP"] * (len(pairs) // 2)
    assert pairs[1::2] == ["NAV-TIMEUTC"] * (len(pairs) // 2)


@pytest.mark.parametrize(
    ("cls_name", "name"), [("TIM", "TIM-TP"), ("NAV", "NAV-TIMEUTC"), ("NAV", "NAV-PVT")]
)
def test_empty_polls_of_periodic_messages_are_answered(
    emu: F9tEmulator, client: Client, cls_name: str, name: str
) -> None:
    client.send(poll(cls_name, name))
    _, parsed = client.wait_for(name)
    assert parsed.identity == name


def test_nav_pvt_reports_a_time_fix_at_the_position(client: Client) -> None:
    client.send(poll("NAV", "NAV-PVT"))
    _, pvt = client.wait_for("NAV-PVT")
    assert pvt.fixType == 5
    assert pvt.gnssFixOk == 1
    assert pvt.lat == pytest.approx(37.4219999, abs=1e-7)
    assert pvt.lon == pytest.approx(-122.0840575, abs=1e-7)
    assert pvt.height == 12345  # mm


def _utc_of_tow(week: int, tow_ms: int) -> int:
    return calendar.timegm((1980, 1, 6, 0, 0, 0)) + week * 604800 + tow_ms // 1000


def _timing_sample(source: str, client: Client | None) -> tuple[list[Any], list[Any]]:
    if source == "real capture":
        parsed = [UBXReader.parse(raw) for raw in capture_frames()]
    else:
        assert client is not None
        assert client.valset(RAM, [(TIM_TP_USB, 1), (NAV_TIMEUTC_USB, 1)])
        client.wait_for("NAV-TIMEUTC")
        parsed = [p for _, p in client.frames(20 * EPOCH_S) if p is not None]
    tps = [p for p in parsed if p.identity == "TIM-TP"]
    utcs = [p for p in parsed if p.identity == "NAV-TIMEUTC"]
    assert len(tps) >= 5
    assert len(utcs) >= 5
    return tps, utcs


@pytest.mark.parametrize("source", ["real capture", "emulator"])
def test_timing_messages_look_like_the_real_receiver(
    emu: F9tEmulator, client: Client, source: str
) -> None:
    """The same checks pass on the real capture and on the emulator's output."""
    tps, utcs = _timing_sample(source, client)
    week = tps[0].week
    for tp in tps:
        assert (tp.timeBase, tp.utc, tp.qErrInvalid) == (1, 1, 0)
        assert tp.raim in (1, 2)
        assert tp.timeRefGnss == 15
        assert tp.utcStandard == 3
        assert -5000 <= tp.qErr <= 5000
        assert tp.towMS % 1000 == 0
        assert tp.towSubMS == 0
    assert len({tp.qErr for tp in tps}) > 1  # it varies
    for utc in utcs:
        assert (utc.validTOW, utc.validWKN, utc.validUTC, utc.utcStandard) == (1, 1, 1, 3)
        assert 100_000 <= utc.nano <= 999_999
        assert 10 <= utc.tAcc <= 200
        # iTOW is GPS time: the UTC fields are iTOW - 18 s.
        when = calendar.timegm((utc.year, utc.month, utc.day, utc.hour, utc.min, utc.sec, 0, 0, 0))
        assert when == _utc_of_tow(week, utc.iTOW - 18_000)
    # TIM-TP towMS is in the UTC scale: its pulses fall among the NAV-TIMEUTC epochs, a little ahead.
    nav_seconds = {
        calendar.timegm((u.year, u.month, u.day, u.hour, u.min, u.sec, 0, 0, 0)) for u in utcs
    }
    for tp in tps:
        assert min(nav_seconds) < _utc_of_tow(tp.week, tp.towMS) <= max(nav_seconds) + 2


# -- fault hooks ------------------------------------------------------------------------------


def test_nak_keys_nak_valset_and_valget(emu: F9tEmulator, client: Client) -> None:
    emu.nak_keys = {key_id("CFG_TP_FREQ_TP1")}
    assert client.valset(RAM, [("CFG_TP_FREQ_TP1", 1), ("CFG_TP_FREQ_TP2", 2)]) is False
    assert emu.value("CFG_TP_FREQ_TP2") == 0  # a NAKed v0 message applies nothing
    assert client.valget(POLL_RAM, ["CFG_TP_FREQ_TP1"]) is None
    emu.nak_keys.clear()
    assert client.valset(RAM, [("CFG_TP_FREQ_TP1", 1)]) is True


def test_mismatch_stores_another_value(emu: F9tEmulator, client: Client) -> None:
    emu.mismatch = {key_id("CFG_TP_FREQ_TP1"): 0, key_id("CFG_TP_DUTY_TP1"): 0.02}
    assert client.valset(RAM, [("CFG_TP_FREQ_TP1", 1), ("CFG_TP_DUTY_TP1", 0.01)]) is True
    got = client.valget(POLL_RAM, ["CFG_TP_FREQ_TP1", "CFG_TP_DUTY_TP1"])
    assert got is not None
    assert got.CFG_TP_FREQ_TP1 == 0
    assert got.CFG_TP_DUTY_TP1 == 0.02


def test_unencodable_mismatch_is_logged_and_the_receiver_keeps_working(
    emu: F9tEmulator, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    emu.mismatch = {key_id("CFG_TP_FREQ_TP1"): "not a number"}
    client.send(UBXMessage.config_set(RAM, 0, [("CFG_TP_FREQ_TP1", 1)]))
    assert [p for _, p in client.frames(5 * EPOCH_S) if p is not None] == []
    assert "mismatch[0x40050024] (CFG_TP_FREQ_TP1, U004)" in caplog.text
    emu.mismatch = {}
    assert client.valset(RAM, [("CFG_TP_FREQ_TP1", 1)]) is True


def test_silent_answers_nothing(emu: F9tEmulator, client: Client) -> None:
    assert client.valset(RAM, [(TIM_TP_USB, 1)])
    emu.silent = True
    client.send(poll("MON", "MON-VER"))
    client.send(poll("SEC", "SEC-UNIQID"))
    assert [p for _, p in client.frames(10 * EPOCH_S) if p is not None] == []
    emu.silent = False
    client.send(poll("MON", "MON-VER"))
    client.wait_for("MON-VER")


def test_reply_delay_holds_back_replies(emu: F9tEmulator, client: Client) -> None:
    emu.reply_delay_s = 0.4
    started = time.monotonic()
    client.send(poll("MON", "MON-VER"))
    client.wait_for("MON-VER")
    assert time.monotonic() - started >= 0.35


def test_corrupt_checksums_make_every_frame_invalid(emu: F9tEmulator, client: Client) -> None:
    emu.corrupt_checksums = True
    client.send(poll("MON", "MON-VER"))
    data = b""
    deadline = time.monotonic() + WAIT_S
    while len(data) < 258 and time.monotonic() < deadline:
        data += client.port.read(512)
    assert data[:4] == bytes.fromhex("b5620a04")
    assert len(data) == 258
    assert FrameSplitter().feed(data) == []  # the frame is there, its checksum is not valid


def test_noise_interleaves_nmea_and_garbage(emu: F9tEmulator, client: Client) -> None:
    emu.noise = True
    client.send(poll("SEC", "SEC-UNIQID"))
    data = b""
    deadline = time.monotonic() + WAIT_S
    while b"\xb5\x62\x27\x03" not in data and time.monotonic() < deadline:
        data += client.port.read(512)
    assert data.startswith(b"$GNTXT,")
    assert b"\xb5\x62\x27\x03" in data
    (frame,) = FrameSplitter().feed(data + client.port.read(64))
    assert UBXReader.parse(frame.raw).uniqueId == 0xDF03A241BC
    # pyubx2's own stream reader (an independent framer) skips the noise too.
    for _ in range(3):
        client.send(poll("MON", "MON-VER"))
        assert client.wait_for("MON-VER")[0].startswith(b"\xb5\x62\x0a\x04")


# -- unplug / replug --------------------------------------------------------------------------


def read_until_gone(port: serial.Serial) -> None:
    """Read until the port fails, or give up after WAIT_S (then the caller's check fails)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        port.read(1)


def test_unplug_makes_reads_fail_and_replug_reuses_the_symlink(tmp_path: Path) -> None:
    link = tmp_path / "ublox-f9t"
    with F9tEmulator(epoch_s=EPOCH_S, link=link) as emu:
        assert emu.device_path == str(link)
        assert link.is_symlink()
        first = Client(str(link))
        assert first.valset(RAM | BBR, [("CFG_TP_FREQ_TP1", 5)])
        assert first.valset(RAM, [("CFG_TP_FREQ_TP2", 6)])
        emu.unplug()
        assert not link.exists()
        with pytest.raises(serial.SerialException):
            read_until_gone(first.port)
        first.close()

        emu.replug()
        assert link.is_symlink()
        second = Client(str(link))
        second.send(poll("MON", "MON-VER"))
        second.wait_for("MON-VER")
        # A power cycle: RAM rebuilt from BBR; the RAM-only setting is gone.
        assert emu.value("CFG_TP_FREQ_TP1") == 5
        assert emu.value("CFG_TP_FREQ_TP2") == 0
        second.close()
    assert not link.exists()


def test_replug_needs_a_link(emu: F9tEmulator) -> None:
    with pytest.raises(ValueError, match="link=PATH"):
        emu.replug()


def test_link_over_a_regular_file_is_refused(tmp_path: Path) -> None:
    occupied = tmp_path / "ttyACM0"
    occupied.write_text("not a device")
    fds_before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(ValueError, match="not a symlink"):
        F9tEmulator(link=occupied).start()
    assert occupied.read_text() == "not a device"
    assert len(os.listdir("/proc/self/fd")) == fds_before  # nothing leaked


# -- replay -----------------------------------------------------------------------------------


def test_replay_re_emits_the_captured_frames_byte_for_byte() -> None:
    captured = capture_frames()
    with F9tEmulator(epoch_s=EPOCH_S, replay=CAPTURE) as emu:
        host = Client(emu.device_path)
        try:
            frames: list[bytes] = []
            deadline = time.monotonic() + 4 * WAIT_S
            splitter = FrameSplitter()
            while len(frames) < len(captured) + 5 and time.monotonic() < deadline:
                frames += [f.raw for f in splitter.feed(host.port.read(4096))]
        finally:
            host.close()
    assert len(frames) >= len(captured) + 5
    start = captured.index(frames[0])  # the port may open mid-stream
    expected = (captured * 3)[start : start + len(frames)]  # it starts over at the end
    assert frames == expected


# -- construction errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"epoch_s": 0}, "epoch_s"), ({"unique_id": 1 << 40}, "unique_id")],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        F9tEmulator(**kwargs)


def test_bad_layer_name_in_value_is_explained(emu: F9tEmulator) -> None:
    with pytest.raises(ValueError, match="RAM, BBR, FLASH, DEFAULT"):
        emu.value("CFG_TP_FREQ_TP1", "EEPROM")


def test_register_csv_limits_keys_and_sets_defaults(tmp_path: Path) -> None:
    csv_path = tmp_path / "f9t_registers.csv"
    csv_path.write_text(
        "Configuration item,Key ID,Type,Scale,Unit,Default value,Description\n"
        "CFG-TP-FREQ_TP1,0x40050024,U4,,Hz,1,frequency\n"
        "CFG-MSGOUT-UBX_TIM_TP_USB,0x20910180,U1,,,1,TIM-TP rate on USB\n"
    )
    with F9tEmulator(epoch_s=EPOCH_S, register_csv=csv_path) as emu:
        host = Client(emu.device_path)
        try:
            got = host.valget(POLL_RAM, ["CFG_TP_FREQ_TP1"])
            assert got is not None
            assert got.CFG_TP_FREQ_TP1 == 1
            host.wait_for("TIM-TP")  # the CSV turns TIM-TP on by default
            assert host.valset(RAM, [("CFG_TP_FREQ_TP2", 2)]) is False  # not in the CSV
        finally:
            host.close()
