"""google.protobuf.Struct headers as plain dicts, for the daemon (uploads) and the clients.

Kept apart from `parse` so the daemon does not import what only clients need (pandas).
"""

from __future__ import annotations

from typing import Any


def struct_to_dict(struct: Any) -> dict[str, Any]:
    """A google.protobuf.Struct as a plain dict; integral numbers come back as int.

    Struct carries every number as a double, but PFF header fields are integers (ns, µs,
    counters), and users index and compare them as such.
    """
    return {key: _value(value) for key, value in struct.fields.items()}


def _value(value: Any) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_value(v) for v in value.list_value.values]
    return None
