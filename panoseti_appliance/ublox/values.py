"""ZED-F9T configuration keys: name normalisation and typed value coercion.

The gRPC Struct delivers every JSON number as a double, while pyubx2 is strict about Python types
(int for U/I/E/L, float for R, bytes for X). This module turns user values into exactly what
pyubx2 and the receiver expect, and refuses anything that would silently change meaning (1.9 for
an integer key, NaN, out-of-range values).
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass

from pyubx2 import UBX_CONFIG_DATABASE

_HEX_ID = re.compile(r"^0[xX][0-9a-fA-F]{8}$")

#: key id -> (name, type) for ids written as 0x12345678.
_BY_ID: dict[int, tuple[str, str]] = {
    kid: (name, typ) for name, (kid, typ) in UBX_CONFIG_DATABASE.items()
}


class UnknownKeyError(ValueError):
    """A configuration key name or id that pyubx2's database does not know."""


@dataclass(frozen=True)
class CfgKey:
    """One configuration database entry: canonical name, numeric id and pyubx2 type string."""

    name: str
    key_id: int
    type: str  # e.g. "U004", "R008", "X001", "L001"

    @property
    def kind(self) -> str:
        """The type letter: U, I, E, L, R or X."""
        return self.type[0]

    @property
    def size(self) -> int:
        """Width in bytes (L is 1 bit on the wire but given as 1 here)."""
        return int(self.type[1:])


def normalise_key(raw: object) -> CfgKey:
    """Resolve a user key (`CFG-TP-ANT_CABLEDELAY`, `cfg_tp_freq_tp1`, `0x40050024`) to a CfgKey."""
    if not isinstance(raw, str):
        raise UnknownKeyError(f"key must be a string, got {raw!r}")
    text = raw.strip()
    if _HEX_ID.match(text):
        kid = int(text, 16)
        if kid not in _BY_ID:
            raise UnknownKeyError(f"Undefined configuration database key {text}")
        name, typ = _BY_ID[kid]
        return CfgKey(name, kid, typ)
    name = text.replace("-", "_").upper()
    entry = UBX_CONFIG_DATABASE.get(name)
    if entry is None:
        raise UnknownKeyError(f"Undefined configuration database key {name}")
    return CfgKey(name, int(entry[0]), str(entry[1]))


def key_by_name(name: str) -> CfgKey:
    """A CfgKey for a canonical database name (programming errors raise UnknownKeyError)."""
    return normalise_key(name)


def all_key_names() -> list[str]:
    """Every configuration key name in pyubx2's database (1 343 in 1.4.0)."""
    return list(UBX_CONFIG_DATABASE)


def _integral(key: CfgKey, value: object) -> int:
    """An exact integer from an int, an integral double, a decimal string or a 0x string."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or value != math.floor(value):
            raise ValueError(
                f"{key.name}: {value!r} is not an integer (type {key.type}); give a whole number"
            )
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text, 16) if text.lower().startswith(("0x", "-0x")) else int(text, 10)
        except ValueError:
            raise ValueError(
                f"{key.name}: {value!r} is not an integer (type {key.type}); "
                "give a number, a decimal string or a 0x… string"
            ) from None
    raise ValueError(f"{key.name}: {value!r} is not an integer (type {key.type})")


def _check_range(key: CfgKey, value: int, signed: bool) -> int:
    bits = 8 * key.size
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= value <= hi:
        raise ValueError(f"{key.name}: {value} is out of range {lo}..{hi} (type {key.type})")
    return value


def coerce_value(key: CfgKey, value: object) -> int | float | bytes:
    """Convert a user value to the Python type pyubx2 needs for `key` (docs/ublox.md, "Values").

    Raises ValueError with a message naming the key and saying what is accepted.
    """
    kind = key.kind
    if kind == "L":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int | float) and value in (0, 1):
            return int(value)
        raise ValueError(f"{key.name}: {value!r} is not a boolean; give true/false or 0/1")
    if kind in "UE":
        # E (enumeration) values are unsigned on the wire in the F9T interface description.
        return _check_range(key, _integral(key, value), signed=False)
    if kind == "I":
        return _check_range(key, _integral(key, value), signed=True)
    if kind == "R":
        number: float
        if isinstance(value, bool):
            raise ValueError(f"{key.name}: {value!r} is not a number (type {key.type})")
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise ValueError(
                    f"{key.name}: {value!r} is not a number (type {key.type})"
                ) from None
        else:
            raise ValueError(f"{key.name}: {value!r} is not a number (type {key.type})")
        if not math.isfinite(number):
            raise ValueError(f"{key.name}: {value!r} is not finite; give a finite number")
        if key.size == 4:
            try:
                struct.pack("<f", number)
            except OverflowError:
                raise ValueError(f"{key.name}: {value!r} does not fit a float32 (R4)") from None
        return number
    if kind == "X":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(
                f"{key.name}: {value!r} is not a bit field; give an integer or a 0x… string"
            )
        if isinstance(value, str) and not value.strip().lower().startswith("0x"):
            raise ValueError(f"{key.name}: {value!r} must be an integer or a 0x… string")
        number_x = _check_range(key, _integral(key, value), signed=False)
        return number_x.to_bytes(key.size, "little")
    raise ValueError(f"{key.name}: unsupported type {key.type}")


def values_equal(key: CfgKey, wanted: object, got: object) -> bool:
    """Verification compare: exact for everything but R4, which allows float32 rounding."""
    if got is None:
        return False
    if key.kind == "R" and key.size == 4:
        if not isinstance(got, int | float) or not isinstance(wanted, int | float):
            return False
        return abs(float(got) - float(wanted)) <= 1e-6 * max(1.0, abs(float(wanted)))
    if key.kind == "X":
        got_b = got if isinstance(got, bytes) else None
        if isinstance(got, int) and not isinstance(got, bool):
            got_b = got.to_bytes(key.size, "little")
        return got_b == wanted
    if isinstance(got, bool):
        got = int(got)
    return bool(got == wanted)


def display_value(value: object) -> object:
    """A JSON-friendly rendering of a coerced value (X bytes as a 0x hex string, little-endian)."""
    if isinstance(value, bytes):
        return "0x" + value[::-1].hex().upper()
    return value
