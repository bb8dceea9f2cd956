"""A received UBX frame and its wire form, `CaptureUbloxResponse` (docs/ublox.md).

One conversion serves CaptureUblox, PollMessage and the tests, so every client sees the same
`parsed_data`: the message's fields under their pyubx2 names (scaling applied), bytes as
lower-case hex, plus `identity`, `msg_cls`, `msg_id` and `length`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp
from pyubx2 import UBXMessage, UBXMessageError, UBXParseError, UBXReader, UBXTypeError

from panoseti_appliance._proto import ublox_control_pb2 as pb

#: What pyubx2 1.4.0 raises on a checksum-valid frame it cannot parse: its own errors, and an
#: IndexError from its field decoder on a payload shorter than the message's layout (seen on
#: RXM-QZSSL6). Anything else raised while parsing is a bug, not a bad frame.
PARSE_ERRORS: tuple[type[Exception], ...] = (
    UBXParseError,
    UBXMessageError,
    UBXTypeError,
    IndexError,
)


@dataclass(frozen=True)
class UbxFrame:
    """One UBX frame as received: exact bytes, pyubx2's parse and the host receive time."""

    raw: bytes
    message: UBXMessage
    rx_time: float  # host time.time() when the frame's last byte was read

    @property
    def identity(self) -> str:
        return str(self.message.identity)

    @property
    def msg_cls(self) -> int:
        return self.raw[2]

    @property
    def msg_id(self) -> int:
        return self.raw[3]

    @property
    def length(self) -> int:
        return int.from_bytes(self.raw[4:6], "little")

    @property
    def payload(self) -> bytes:
        """The message payload without header and checksum."""
        return self.raw[6:-2]

    @classmethod
    def from_raw(cls, raw: bytes, rx_time: float) -> UbxFrame:
        """Parse a whole frame (B5 62 … CK_A CK_B); raises one of PARSE_ERRORS on a bad frame."""
        return cls(bytes(raw), UBXReader.parse(raw), rx_time)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def parsed_data(frame: UbxFrame) -> dict[str, Any]:
    """Every public field of the parsed message plus identity/msg_cls/msg_id/length."""
    out: dict[str, Any] = {
        "identity": frame.identity,
        "msg_cls": frame.msg_cls,
        "msg_id": frame.msg_id,
        "length": frame.length,
    }
    for name, value in vars(frame.message).items():
        if name.startswith("_") or name in ("payload", "msgmode"):
            continue
        out[name] = _plain(value)
    return out


def timestamp(unix_s: float) -> Timestamp:
    ts = Timestamp()
    seconds = int(unix_s // 1)
    ts.seconds = seconds
    ts.nanos = min(round((unix_s - seconds) * 1e9), 999_999_999)
    return ts


def capture_response(frame: UbxFrame) -> pb.CaptureUbloxResponse:
    """The DATA response for a frame: whole frame bytes, receive time, parsed fields."""
    data = Struct()
    data.update(parsed_data(frame))
    return pb.CaptureUbloxResponse(
        type=pb.CaptureUbloxResponse.DATA,
        name=frame.identity,
        parsed_data=data,
        pkt_unix_timestamp=timestamp(frame.rx_time),
        payload=frame.raw,
    )


def error_response(message: str, name: str = "") -> pb.CaptureUbloxResponse:
    """An ERROR entry (dropped frames, device loss, a poll without answer)."""
    return pb.CaptureUbloxResponse(type=pb.CaptureUbloxResponse.ERROR, name=name, message=message)
