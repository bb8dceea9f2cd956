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


#: Wire type of varint fields.
VARINT = 0


def top_level_fields(data: bytes) -> list[tuple[int, int, int, int]]:
    """(field number, wire type, start, end) of each field of the message `data`: for a varint
    field the varint's bytes, for a length-delimited one its contents. ValueError when `data`
    is cut short or holds another wire type (none of the messages read here has one)."""
    out: list[tuple[int, int, int, int]] = []
    pos = 0
    while pos < len(data):
        key, start = read_varint(data, pos)
        kind = key & 7
        if kind == VARINT:
            _, pos = read_varint(data, start)
        elif kind == LEN:
            size, start = read_varint(data, start)
            pos = start + size
            if pos > len(data):
                raise ValueError("a length-delimited field runs past the end")
        else:
            raise ValueError(f"wire type {kind}")
        out.append((key >> 3, kind, start, pos))
    return out


def embedded_messages(data: bytes) -> list[tuple[int, int, int]] | None:
    """(field number, start, end) of each top-level field of `data`, when every one of them is
    length-delimited and well formed; None otherwise (the caller then leaves it to protobuf)."""
    try:
        fields = top_level_fields(data)
    except ValueError:
        return None
    if any(kind != LEN for _, kind, _, _ in fields):
        return None
    return [(number, start, end) for number, _, start, end in fields]


def field_bytes(data: bytes, number: int) -> bytes | None:
    """The contents of length-delimited field `number` of the message `data`, when it occurs
    exactly once and every field is a varint or length-delimited (as in a canonical
    PanoImage); None otherwise."""
    try:
        fields = top_level_fields(data)
    except ValueError:
        return None
    found = [(kind, start, end) for n, kind, start, end in fields if n == number]
    if len(found) != 1 or found[0][0] != LEN:
        return None
    _, start, end = found[0]
    return data[start:end]
