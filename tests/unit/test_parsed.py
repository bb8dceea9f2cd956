"""Every frame of the real ZED-F9T capture parses into the CaptureUblox wire form."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance.ublox.client.display import format_line, json_line
from panoseti_appliance.ublox.parsed import UbxFrame, capture_response, parsed_data

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "ubx_packets.jsonl"


def records() -> list[tuple[str, bytes]]:
    out = []
    for line in CAPTURE.read_text().splitlines():
        rec = json.loads(line)
        out.append((rec["identity"], base64.b64decode(rec["payload_b64"])))
    return out


def test_capture_has_the_documented_mix() -> None:
    identities = [i for i, _ in records()]
    assert len(identities) == 81
    assert identities[0] == "ACK-ACK"
    assert identities.count("TIM-TP") == 40
    assert identities.count("NAV-TIMEUTC") == 40


@pytest.mark.parametrize(("n", "record"), list(enumerate(records())))
def test_every_real_frame_round_trips(n: int, record: tuple[str, bytes]) -> None:
    identity, raw = record
    frame = UbxFrame.from_raw(raw, rx_time=1_755_057_244.25 + n)
    response = capture_response(frame)
    assert response.type == pb.CaptureUbloxResponse.DATA
    assert response.name == identity
    assert response.payload == raw
    assert response.message == ""
    ts = response.pkt_unix_timestamp
    assert ts.seconds == 1_755_057_244 + n
    assert ts.nanos == 250_000_000
    data = MessageToDict(response.parsed_data)
    assert data["identity"] == identity
    assert data["msg_cls"] == raw[2]
    assert data["msg_id"] == raw[3]
    assert data["length"] == len(raw) - 8
    assert "payload" not in data
    assert "msgmode" not in data


def test_tim_tp_fields_match_the_capture() -> None:
    raw = next(r for i, r in records() if i == "TIM-TP")
    data = parsed_data(UbxFrame.from_raw(raw, 0.0))
    assert data["towMS"] == 273244000
    assert data["week"] == 2379
    assert data["qErr"] == 2558
    assert data["towSubMS"] == 0.0
    assert (data["timeBase"], data["utc"], data["timeRefGnss"], data["utcStandard"]) == (
        1,
        1,
        15,
        3,
    )


def test_nav_timeutc_and_ack_fields() -> None:
    recs = records()
    ack = parsed_data(UbxFrame.from_raw(recs[0][1], 0.0))
    assert (ack["clsID"], ack["msgID"]) == (0x06, 0x8B)
    utc = parsed_data(UbxFrame.from_raw(recs[1][1], 0.0))
    assert (utc["year"], utc["month"], utc["day"], utc["hour"], utc["min"], utc["sec"]) == (
        2025,
        8,
        13,
        3,
        54,
        2,
    )
    assert utc["validUTC"] == 1
    assert utc["iTOW"] == 273260000  # GPS time: UTC + 18 s


def test_bytes_become_lower_case_hex() -> None:
    from pyubx2 import UBXMessage

    payload = b"EXT CORE 1.00".ljust(30, b"\0") + b"00190000".ljust(10, b"\0")
    raw = UBXMessage(0x0A, 0x04, 0, payload=payload).serialize()
    data = parsed_data(UbxFrame.from_raw(raw, 0.0))
    assert data["hwVersion"] == b"00190000\0\0".hex()
    assert data["swVersion"].startswith("45585420")


def test_display_lines() -> None:
    recs = records()
    frame = UbxFrame.from_raw(recs[2][1], 1_755_057_244.5)
    response = capture_response(frame)
    line = format_line("node1", response)
    assert line.startswith("2025-08-13T03:54:04.500000Z node1 TIM-TP qErr=2558 towMS=273244000")
    record = json.loads(json_line("node1", response))
    assert record["name"] == "TIM-TP"
    assert record["parsed_data"]["qErr"] == 2558
    assert bytes.fromhex(record["payload"]) == recs[2][1]


def test_mon_ver_line_shows_text() -> None:
    from pyubx2 import UBXMessage

    ext = [b"ROM BASE 0x118B2060", b"FWVER=TIM 2.20", b"PROTVER=29.20", b"MOD=ZED-F9T"]
    payload = (
        b"EXT CORE 1.00 (abc)".ljust(30, b"\0")
        + b"00190000".ljust(10, b"\0")
        + b"".join(e.ljust(30, b"\0") for e in ext)
    )
    raw = UBXMessage(0x0A, 0x04, 0, payload=payload).serialize()
    line = format_line("n", capture_response(UbxFrame.from_raw(raw, 0.0)))
    assert line == (
        "- n MON-VER swVersion='EXT CORE 1.00 (abc)' hwVersion='00190000' "
        "extension_02='FWVER=TIM 2.20' extension_04='MOD=ZED-F9T'"
    )
