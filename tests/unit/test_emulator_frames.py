"""The emulator's building blocks without a pty: frames, key sizes, register table, replay file.

The stream splitter both the emulator and the serial link use is tested in test_ubx_splitter.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from pyubx2 import UBX_CONFIG_DATABASE, UBXReader

from panoseti_appliance.ublox.emulator.device import load_replay, replay_epochs
from panoseti_appliance.ublox.emulator.f9tregisters import (
    CSV_HEADER,
    KeyTable,
    RegisterStore,
    decode_value,
    encode_value,
)
from panoseti_appliance.ublox.ubxframes import (
    build_frame,
    checksum,
    identity,
    key_value_size,
)

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "ubx_packets.jsonl"


def test_build_frame_matches_the_known_poll_frames() -> None:
    assert build_frame(0x0A, 0x04).hex() == "b5620a0400000e34"
    assert build_frame(0x27, 0x03).hex() == "b562270300002aa5"
    assert build_frame(0x05, 0x01, b"\x06\x8b").hex() == "b56205010200068b99c2"


def test_checksum_agrees_with_pyubx2_on_every_captured_frame() -> None:
    for line in CAPTURE.read_text().splitlines():
        raw = base64.b64decode(json.loads(line)["payload_b64"])
        assert checksum(raw[2:-2]) == raw[-2:]
        assert build_frame(raw[2], raw[3], raw[6:-2]) == raw
        assert UBXReader.parse(raw).identity == identity(raw[2], raw[3])


@pytest.mark.parametrize(
    ("key_id", "size"),
    [(0x10050007, 1), (0x20910180, 1), (0x30210001, 2), (0x40050024, 4), (0x5005002A, 8)],
)
def test_key_value_size_from_id_bits(key_id: int, size: int) -> None:
    assert key_value_size(key_id) == size


def test_key_size_code_zero_is_rejected() -> None:
    with pytest.raises(ValueError, match="size code 0"):
        key_value_size(0x00050007)


def test_database_sizes_agree_with_the_types() -> None:
    for name, (key_id, typ) in UBX_CONFIG_DATABASE.items():
        assert key_value_size(key_id) == int(typ[1:]), name


@pytest.mark.parametrize(
    ("typ", "value", "size"),
    [
        ("U001", 255, 1),
        ("I004", -5, 4),
        ("R004", 1.5, 4),
        ("R008", 0.01, 8),
        ("X002", b"\x01\x02", 2),
    ],
)
def test_encode_decode_round_trip(typ: str, value: object, size: int) -> None:
    assert decode_value(typ, encode_value(typ, value, size)) == value


@pytest.mark.parametrize(
    ("typ", "value", "size", "error"),
    [
        ("U001", 256, 1, OverflowError),
        ("U001", 1.5, 1, TypeError),
        ("R004", "x", 4, TypeError),
        ("X002", b"\x01", 2, ValueError),
    ],
)
def test_encode_rejects_values_that_do_not_fit(
    typ: str, value: object, size: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        encode_value(typ, value, size)


def _csv(tmp_path: Path, rows: list[str], header: str | None = None) -> Path:
    path = tmp_path / "f9t_registers.csv"
    path.write_text("\n".join([header or ",".join(CSV_HEADER), *rows]) + "\n")
    return path


def test_register_csv_sets_the_known_keys_and_defaults(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        [
            "CFG-TP-FREQ_TP1,0x40050024,U4,1,Hz,1,time pulse frequency",
            "CFG-TP-DUTY_TP1,0x5005002a,R8,,%,10.0,duty",
            "CFG-TP-TP1_ENA,0x10050007,L,,,true,enable",
            "CFG-INFMSG-UBX_USB,0x20920004,X1,,,0x07,info",
        ],
    )
    table = KeyTable.from_csv(path)
    assert set(table.by_name) == {
        "CFG_TP_FREQ_TP1",
        "CFG_TP_DUTY_TP1",
        "CFG_TP_TP1_ENA",
        "CFG_INFMSG_UBX_USB",
    }
    store = RegisterStore(table)
    assert store.value("CFG_TP_FREQ_TP1") == 1
    assert store.value("CFG-TP-DUTY_TP1", "DEFAULT") == 10.0
    assert store.value(0x10050007) == 1
    assert store.value("CFG_INFMSG_UBX_USB") == b"\x07"
    # A key outside the CSV is unknown to this receiver: VALSET NAKs.
    pairs = (0x40050025).to_bytes(4, "little") + (5).to_bytes(4, "little")
    assert store.valset(bytes((0, 1, 0, 0)) + pairs, unknown=set(), mismatch={}) is False


@pytest.mark.parametrize(
    ("rows", "header", "match"),
    [
        ([], "Name,Key,Type", "first line must be the header"),
        ([], None, "no configuration items"),
        (["CFG-X,0xZZ,U1,,,0,x"], None, "Key ID"),
        (["CFG-X,0x40050024,Q4,,,0,x"], None, "Type 'Q4'"),
        (["CFG-X,0x10050007,U1,,,300,x"], None, "Default value '300'"),
        (["CFG-X,0x10050007"], None, "expected 7 columns"),
    ],
)
def test_bad_register_csv_names_the_line_and_field(
    tmp_path: Path, rows: list[str], header: str | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        KeyTable.from_csv(_csv(tmp_path, rows, header))


def test_replay_groups_the_capture_into_epochs() -> None:
    frames = load_replay(CAPTURE)
    assert len(frames) == 81
    epochs = replay_epochs(frames)
    assert [f for epoch in epochs for f in epoch] == frames
    for epoch in epochs:
        kinds = [raw[2:4] for raw in epoch]
        assert len(kinds) == len(set(kinds))


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("not json", "line 2: expected"),
        ('{"identity": "X"}', "line 2: expected"),
        (
            '{"identity": "X", "payload_b64": "tWIKBAAADjU="}',
            "line 2: payload_b64 is not one whole",
        ),
    ],
)
def test_bad_replay_file_names_the_line(tmp_path: Path, line: str, match: str) -> None:
    path = tmp_path / "replay.jsonl"
    first = CAPTURE.read_text().splitlines()[0]
    path.write_text(f"{first}\n{line}\n")
    with pytest.raises(ValueError, match=match):
        load_replay(path)
