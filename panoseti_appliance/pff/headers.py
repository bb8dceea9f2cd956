"""The one rule that decides whether a decoded JSON header is a valid frame header.

The file tail, the Hashpipe socket reader and the simulator all judge frames by
`header_problem`, so that a frame accepted on one path is accepted on every path, and no
accepted header can break the gRPC streams that deliver it to clients as a protobuf Struct.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

from panoseti_appliance.pff.layout import QUABO_KEYS, TIME_FIELDS
from panoseti_appliance.products import DataProduct

#: Deepest nesting of objects and arrays a header may have. Real headers nest two deep; a
#: header travels as a protobuf Struct, whose decoders refuse nesting of about 50 levels, so a
#: much deeper header could be ingested but never delivered to any client.
MAX_HEADER_DEPTH = 8
#: Integers at or beyond this magnitude do not fit a double (they round up to 2**1024).
_DOUBLE_LIMIT = 2**1024 - 2**970
_TIME_VALUES = operator.itemgetter(*TIME_FIELDS)
_QUABO_GROUPS = operator.itemgetter(*QUABO_KEYS)
_INT_ONLY = {int}


def header_problem(header: Any, dp: DataProduct) -> str | None:
    """Why `header` is not a valid header of `dp`, or None when it is.

    ph256 headers are flat with `quabo_num`; the 4-quabo products have `quabo_0..quabo_3`
    objects. Every packet/time field must be an integer, as every producer writes them: the
    file tail, the Hashpipe socket reader and the simulator all judge frames by this one rule.
    The whole header must also survive the trip to clients as a protobuf Struct (see
    `wire_problem`), so that no accepted frame can break the streams that send it.
    """
    if _well_formed(header, dp):
        return None
    if not isinstance(header, Mapping):
        return "header is not a JSON object"
    problem = wire_problem(header)
    if problem is not None:
        return problem
    groups: list[tuple[str, Any]]
    if dp.name == "ph256":
        groups = [("", header)]
        missing = [] if "quabo_num" in header else ["quabo_num"]
    else:
        groups = [(f"{k}.", header.get(k)) for k in QUABO_KEYS]
        missing = [k for k in QUABO_KEYS if not isinstance(header.get(k), Mapping)]
    if missing:
        return f"{dp.name} header lacks {', '.join(missing)}"
    for prefix, group in groups:
        for key in TIME_FIELDS:
            value = group.get(key)
            if not isinstance(value, int) or isinstance(value, bool):
                return f"{dp.name} header field {prefix}{key} is missing or not an integer"
    return None


def _well_formed(header: Any, dp: DataProduct) -> bool:
    """True for a valid header of the usual shape, checked with C-level calls because every
    ingested frame passes here: the product's groups and nothing else, each an object of
    numbers within the double range with integer time fields. False means "spell out the
    problem" (header_problem's full checks), not "invalid"."""
    try:
        if dp.name == "ph256":
            if "quabo_num" not in header:
                return False
            groups = (header,)
        else:
            groups = _QUABO_GROUPS(header)
            if len(header) != len(groups):
                return False
        for group in groups:
            if set(map(type, _TIME_VALUES(group))) != _INT_ONLY:
                return False
            if max(map(abs, group.values())) >= _DOUBLE_LIMIT:
                return False
    except (KeyError, TypeError, IndexError):  # e.g. a string value: the full checks decide
        return False
    return True


def wire_problem(value: Any) -> str | None:
    """Why a decoded JSON header cannot become a protobuf Struct that clients can read, or None.

    Struct numbers are doubles, so an integer beyond the double range (JSON allows any number of
    digits) cannot be converted; nesting deeper than MAX_HEADER_DEPTH is refused too. Valid
    headers of the usual shape never get here (header_problem's `_well_formed` answers first);
    the walk builds no strings unless it finds a problem, whose path it then spells out.
    """
    found = _wire_fault(value, 0)
    if found is None:
        return None
    path, deep = found
    where = "".join(reversed(path)).lstrip(".")
    if deep:
        return f"header nests deeper than {MAX_HEADER_DEPTH} levels at {where}"
    return f"header field {where} is an integer too large for a double"


def _wire_fault(value: Any, depth: int) -> tuple[list[str], bool] | None:
    """(path pieces innermost first, True if too deep) of the first fault in `value`, or None."""
    if isinstance(value, Mapping):
        items: Any = value.items()
        container = True
    elif isinstance(value, list):
        items = enumerate(value)
        container = False
    else:
        if type(value) is int and not -_DOUBLE_LIMIT < value < _DOUBLE_LIMIT:
            return [], False
        return None
    if depth >= MAX_HEADER_DEPTH:
        return [], True
    for key, child in items:
        found = _wire_fault(child, depth + 1)
        if found is not None:
            found[0].append(f".{key}" if container else f"[{key}]")
            return found
    return None
