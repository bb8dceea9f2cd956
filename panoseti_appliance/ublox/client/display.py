"""Human-readable and JSON renderings of UbloxControl messages for the CLI and the demo."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf.json_format import MessageToDict

from panoseti_appliance._proto import ublox_control_pb2 as pb

#: The fields worth a glance per message identity; others show their first few fields.
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "TIM-TP": ("qErr", "towMS", "week", "timeBase", "utc"),
    "NAV-TIMEUTC": ("year", "month", "day", "hour", "min", "sec", "nano", "tAcc", "validUTC"),
    "NAV-PVT": ("fixType", "lat", "lon", "height", "numSV"),
    "MON-VER": ("swVersion", "hwVersion", "extension_02", "extension_04"),
    "SEC-UNIQID": ("uniqueId",),
}
_META = ("identity", "msg_cls", "msg_id", "length")
_OTHER_FIELDS = 6


def _number(value: Any) -> Any:
    """Struct numbers are doubles; show integral ones without '.0'."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _text_field(value: Any) -> Any:
    """MON-VER's NUL-padded strings arrive as hex; show them as text when they are text."""
    if isinstance(value, str) and value and len(value) % 2 == 0:
        try:
            raw = bytes.fromhex(value).rstrip(b"\x00")
        except ValueError:
            return value
        if raw and all(32 <= b < 127 for b in raw):
            return repr(raw.decode("ascii"))
    return value


def received_at(response: pb.CaptureUbloxResponse) -> str:
    """The receive time as ISO-8601 UTC with microseconds, or '-' when unset."""
    ts = response.pkt_unix_timestamp
    if not ts.seconds and not ts.nanos:
        return "-"
    dt = datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_line(host: str, response: pb.CaptureUbloxResponse) -> str:
    """One line: time, host, identity and key fields (e.g. qErr), or the ERROR message."""
    if response.type == pb.CaptureUbloxResponse.ERROR:
        name = f" {response.name}" if response.name else ""
        return f"{received_at(response)} {host} ERROR{name}: {response.message}"
    data = MessageToDict(response.parsed_data)
    wanted = KEY_FIELDS.get(response.name)
    if wanted is None:
        wanted = tuple(k for k in data if k not in _META)[:_OTHER_FIELDS]
    shown = _text_field if response.name == "MON-VER" else _number
    fields = " ".join(f"{k}={shown(data[k])}" for k in wanted if k in data)
    return f"{received_at(response)} {host} {response.name} {fields}".rstrip()


def json_line(host: str, response: pb.CaptureUbloxResponse) -> str:
    """One JSON object per message: host, type, name, time, parsed_data, message, payload hex."""
    record = {
        "host": host,
        "type": pb.CaptureUbloxResponse.Type.Name(response.type),
        "name": response.name,
        "time": received_at(response),
        "parsed_data": {k: _number(v) for k, v in MessageToDict(response.parsed_data).items()},
        "message": response.message,
        "payload": response.payload.hex(),
    }
    return json.dumps(record, sort_keys=False)
