"""UBX wire framing: build frames with their Fletcher checksum and split a byte stream into frames.

The emulated receiver works on raw bytes, as the real one does, so that it accepts exactly what a
ZED-F9T accepts (unknown key ids included) and its output is checked by an independent parser
(pyubx2) in the tests rather than produced by it. The daemon's serial link frames the receiver's
output with the same splitter and only then hands each whole frame to pyubx2, whose own stream
reader loses a real frame behind a stray 0xB5.
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
    """One checksum-valid frame as it arrived: its class, id, payload and the whole raw bytes.

    `end` is the stream offset just past its last byte (bytes fed before it, plus its own), so a
    reader can tell which read delivered that byte even when the frame was held back for a while.
    """

    cls_id: int
    msg_id: int
    payload: bytes
    raw: bytes
    end: int

    @property
    def identity(self) -> str:
        return identity(self.cls_id, self.msg_id)


@dataclass
class FramingStats:
    """What a splitter has seen so far; every byte fed is framed, skipped or still pending."""

    frames: int = 0  # checksum-valid frames returned
    framed_bytes: int = 0  # bytes of those frames
    skipped_bytes: int = 0  # bytes outside any valid frame: NMEA, RTCM, noise, broken frames
    bad_checksums: int = 0  # complete candidate frames whose checksum did not match
    bad_lengths: int = 0  # candidate headers whose length exceeded MAX_PAYLOAD
    given_up: int = 0  # incomplete candidates abandoned by give_up() (waited for too long)
    pending_bytes: int = 0  # held back: an incomplete frame, or a trailing 0xB5 that may start one

    def describe(self) -> str:
        return (
            f"{self.frames} frames, {self.skipped_bytes} bytes skipped, "
            f"{self.bad_checksums} bad checksums, {self.bad_lengths} impossible lengths, "
            f"{self.given_up} incomplete frames given up"
        )

    @property
    def buffer_start(self) -> int:
        """Stream offset of the first pending byte."""
        return self.framed_bytes + self.skipped_bytes


class FrameSplitter:
    """Incremental UBX framer: feed it arbitrary chunks, get back the valid frames in them.

    The daemon's serial link and the emulated receiver both frame with this, so they agree on what
    a frame is. Bytes before a sync pair (NMEA, RTCM, line noise) are skipped. A candidate whose
    length exceeds MAX_PAYLOAD, or whose checksum does not match once it is complete, is dropped
    and the search resumes one byte after its sync, as a receiver does: a stray 0xB5 or a truncated
    frame therefore never costs the real frame behind it. A damaged header that claims a plausible
    length holds the frames behind it until that many bytes have arrived; a reader that knows the
    candidate has waited longer than a real frame could take calls `give_up()` to release them.
    `stats` counts frames, skipped bytes and why candidates were dropped.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.stats = FramingStats()

    def feed(self, data: bytes) -> list[RawFrame]:
        """Append `data` and return every frame now complete, in stream order."""
        self._buf += data
        frames: list[RawFrame] = []
        while True:
            frame = self._next_frame()
            if frame is None:
                self.stats.pending_bytes = len(self._buf)
                return frames
            frames.append(frame)

    def give_up(self) -> list[RawFrame]:
        """Drop the incomplete candidate frame at the buffer's start, return the frames behind it.

        Does nothing when no sync pair is pending (an empty buffer or a lone trailing 0xB5).
        """
        if not self._buf.startswith(SYNC):
            return []
        self.stats.given_up += 1
        self._skip(1)
        return self.feed(b"")

    def _skip(self, count: int) -> None:
        del self._buf[:count]
        self.stats.skipped_bytes += count

    def _next_frame(self) -> RawFrame | None:
        """The first valid frame in the buffer, or None when more bytes are needed."""
        while True:
            start = self._buf.find(SYNC)
            if start < 0:
                # Keep a trailing 0xB5: it may be the first half of a sync pair.
                self._skip(len(self._buf) - 1 if self._buf.endswith(SYNC[:1]) else len(self._buf))
                return None
            self._skip(start)
            if len(self._buf) < HEADER_LEN:
                return None
            length = int.from_bytes(self._buf[4:6], "little")
            if length > MAX_PAYLOAD:
                self.stats.bad_lengths += 1
                self._skip(1)
                continue
            total = HEADER_LEN + length + 2
            if len(self._buf) < total:
                return None
            raw = bytes(self._buf[:total])
            if checksum(raw[2:-2]) != raw[-2:]:
                self.stats.bad_checksums += 1
                self._skip(1)
                continue
            del self._buf[:total]
            self.stats.frames += 1
            self.stats.framed_bytes += total
            end = self.stats.framed_bytes + self.stats.skipped_bytes
            return RawFrame(raw[2], raw[3], raw[HEADER_LEN:-2], raw, end)
