"""UBX wire framing: build frames with their Fletcher checksum and split a byte stream into frames.

The emulated receiver works on raw bytes, as the real one does, so that it accepts exactly what a
ZED-F9T accepts (unknown key ids included) and its output is checked by an independent parser
(pyubx2) in the tests rather than produced by it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyubx2 import UBX_MSGIDS

SYNC = b"\xb5\x62"
HEADER_LEN = 6  # sync(2) class id length(2)
MAX_PAYLOAD = 4096  # longer "lengths" are treated as garbage, not waited for

#: Value width in bytes per key-id size code (bits 28-30); code 1 is a 1-bit value sent as a byte.
_KEY_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8}


def checksum(body: bytes) -> bytes:
    """The 8-bit Fletcher checksum (CK_A, CK_B) over class, id, length and payload."""
    ck_a = ck_b = 0
    for byte in body:
        ck_a = (ck_a + byte) & 0xFF
        ck_b = (ck_b + ck_a) & 0xFF
    return bytes((ck_a, ck_b))


def build_frame(cls_id: int, msg_id: int, payload: bytes = b"") -> bytes:
    """A whole UBX frame `B5 62 cls id len payload CK_A CK_B`."""
    body = bytes((cls_id, msg_id)) + len(payload).to_bytes(2, "little") + payload
    return SYNC + body + checksum(body)


def key_value_size(key_id: int) -> int:
    """Bytes a configuration value occupies on the wire, from bits 28-30 of its key id.

    Raises ValueError for a size code the protocol does not define (0, 6, 7).
    """
    code = (key_id >> 28) & 0x7
    if code not in _KEY_SIZES:
        raise ValueError(f"key id 0x{key_id:08x} has undefined size code {code}")
    return _KEY_SIZES[code]


def identity(cls_id: int, msg_id: int) -> str:
    """pyubx2's name for a message type, or `UNKNOWN-<cls><id>` in hex for one it does not know."""
    name = UBX_MSGIDS.get(bytes((cls_id, msg_id)))
    return str(name) if name else f"UNKNOWN-{cls_id:02x}{msg_id:02x}"


@dataclass(frozen=True)
class RawFrame:
    """One checksum-valid frame as it arrived: its class, id, payload and the whole raw bytes."""

    cls_id: int
    msg_id: int
    payload: bytes
    raw: bytes

    @property
    def identity(self) -> str:
        return identity(self.cls_id, self.msg_id)


class FrameSplitter:
    """Incremental UBX framer: feed it arbitrary chunks, get back the valid frames in them.

    Bytes before a sync pair (NMEA, RTCM, line noise) are skipped; a frame whose checksum does not
    match is dropped silently and the search resumes one byte after its sync, as a receiver does.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[RawFrame]:
        self._buf += data
        frames: list[RawFrame] = []
        while True:
            start = self._buf.find(SYNC)
            if start < 0:
                # Keep a trailing 0xB5: it may be the first half of a sync pair.
                del self._buf[: len(self._buf) - 1 if self._buf.endswith(SYNC[:1]) else None]
                return frames
            del self._buf[:start]
            if len(self._buf) < HEADER_LEN:
                return frames
            length = int.from_bytes(self._buf[4:6], "little")
            if length > MAX_PAYLOAD:
                del self._buf[:1]
                continue
            total = HEADER_LEN + length + 2
            if len(self._buf) < total:
                return frames
            raw = bytes(self._buf[:total])
            if checksum(raw[2:-2]) != raw[-2:]:
                del self._buf[:1]
                continue
            del self._buf[:total]
            frames.append(RawFrame(raw[2], raw[3], raw[HEADER_LEN:-2], raw))
