"""google.protobuf.Struct values as plain Python, for both daemons and the clients.

One walk of Struct's oneof kinds instead of protobuf's json_format.MessageToDict, which refuses a
non-finite number with an error about the whole message (the rules should name the field) and
cannot hand integral numbers back as int. Kept free of client-only imports (pandas).
"""

from __future__ import annotations

from typing import Any

from google.protobuf.struct_pb2 import Struct, Value


def struct_to_dict(struct: Struct, *, integral_as_int: bool = True) -> dict[str, Any]:
    """A google.protobuf.Struct as a plain dict.

    Struct carries every number as a double. PFF header fields are integers (ns, µs, counters)
    that users index and compare as such, so by default integral numbers come back as int;
    `integral_as_int=False` keeps the doubles as sent (InitF9t's rules judge them as given).
    The depth is protobuf's: it decodes no Struct nested deeper than its recursion limit.
    """
    return {key: _value(value, integral_as_int) for key, value in struct.fields.items()}


def _value(value: Value, integral_as_int: bool) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return int(number) if integral_as_int and number.is_integer() else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value, integral_as_int=integral_as_int)
    if kind == "list_value":
        return [_value(v, integral_as_int) for v in value.list_value.values]
    return None
