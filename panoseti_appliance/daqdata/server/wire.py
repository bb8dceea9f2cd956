"""The few pieces of the protobuf wire format the daemon writes and reads by hand.

protobuf's Python API builds and serializes whole messages; it cannot splice an already
serialized PanoImage into a response, nor say which bytes of a received request an embedded
message came from. The DaqData hot paths need both (a frame is serialized once for every
subscriber; an upload is forwarded as it arrived), so these helpers do exactly that and no more.
"""

from __future__ import annotations

#: Wire type of length-delimited fields (embedded messages, bytes, strings, packed repeated).
LEN = 2


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: `tag`, the length, `payload`."""
    return tag + varint(len(payload)) + payload


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it; ValueError if it is cut off or too long."""
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def embedded_messages(data: bytes) -> list[tuple[int, int, int]] | None:
    """(field number, start, end) of each top-level field of `data`, when every one of them is
    length-delimited and well formed; None otherwise (the caller then leaves it to protobuf)."""
    out: list[tuple[int, int, int]] = []
    pos = 0
    try:
        while pos < len(data):
            key, pos = read_varint(data, pos)
            if key & 7 != LEN:
                return None
            size, pos = read_varint(data, pos)
            end = pos + size
            if end > len(data):
                return None
            out.append((key >> 3, pos, end))
            pos = end
    except ValueError:
        return None
    return out


def field_bytes(data: bytes, number: int) -> bytes | None:
    """The contents of length-delimited field `number` of the message `data`, when it occurs
    exactly once and every field before it is a varint or length-delimited (as in a canonical
    PanoImage); None otherwise."""
    pos = 0
    try:
        while pos < len(data):
            key, pos = read_varint(data, pos)
            kind = key & 7
            if kind == 0:
                _, pos = read_varint(data, pos)
                continue
            if kind != LEN:
                return None
            size, pos = read_varint(data, pos)
            end = pos + size
            if key >> 3 == number:
                rest = embedded_fields_after(data, end, number)
                return data[pos:end] if rest and end <= len(data) else None
            pos = end
    except ValueError:
        return None
    return None


def embedded_fields_after(data: bytes, pos: int, number: int) -> bool:
    """True when no later field of `data` (from `pos`) is field `number` again."""
    try:
        while pos < len(data):
            key, pos = read_varint(data, pos)
            if key >> 3 == number:
                return False
            kind = key & 7
            if kind == 0:
                _, pos = read_varint(data, pos)
            elif kind == LEN:
                size, pos = read_varint(data, pos)
                pos += size
            else:
                return False
    except ValueError:
        return False
    return pos == len(data)
