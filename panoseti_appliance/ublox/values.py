"""ZED-F9T configuration keys: name normalisation and typed value coercion.

The gRPC Struct delivers every JSON number as a double, while pyubx2 is strict about Python types
(int for U/I/E/L, float for R, bytes for X). This module turns user values into exactly what
pyubx2 and the receiver expect, and refuses anything that would silently change meaning (1.9 for
an integer key, NaN, out-of-range values) or that the receiver would refuse (an unknown key, a
constant an enumeration does not define), saying what the key takes. The appliance configuration
applies the same functions (`ublox.rules`).
"""

from __future__ import annotations

import difflib
import math
import re
import struct
from dataclasses import dataclass

from pyubx2 import UBX_CONFIG_DATABASE

from panoseti_appliance.runtime.bounded import quote
from panoseti_appliance.ublox.enumerations import ENUMERATIONS, describe

_HEX_ID = re.compile(r"^0[xX][0-9a-fA-F]{8}$")
#: How many configuration keys there are (1 343 in pyubx2 1.4.0), and the longest name's length.
KEY_COUNT = len(UBX_CONFIG_DATABASE)
_LONGEST_NAME = max(map(len, UBX_CONFIG_DATABASE))
#: Longer than any integer a key takes, written in decimal or hex (with sign, 0x and spaces).
_INTEGER_CHARS = 40

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

    @property
    def type_name(self) -> str:
        """The type as the u-blox interface description writes it: U4, I1, E1, L, R8, X2."""
        return "L" if self.kind == "L" else f"{self.kind}{self.size}"

    def integer_range(self) -> tuple[int, int]:
        """Smallest and largest integer of this width and sign (E and X are unsigned)."""
        bits = 8 * self.size
        if self.kind == "I":
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1

    def allowed(self) -> str:
        """What values the key takes, for messages: `a whole number 0..255 (type U1)`."""
        lo, hi = self.integer_range()
        if self.kind == "L":
            text = "true/false or 0/1"
        elif self.kind == "E" and self.name in ENUMERATIONS:
            text = f"one of {describe(ENUMERATIONS[self.name])}"
        elif self.kind in "UIE":
            text = f"a whole number {lo}..{hi}"
        elif self.kind == "R":
            text = "a finite number" + (" within ±3.4e38" if self.size == 4 else "")
        else:
            text = f"an integer or a 0x… string, 0x0..0x{hi:X}"
        return f"{text} (type {self.type_name})"


def normalise_key(raw: object) -> CfgKey:
    """Resolve a user key (`CFG-TP-ANT_CABLEDELAY`, `cfg_tp_freq_tp1`, `0x40050024`) to a CfgKey.

    An unknown name is refused with the closest known names, so a typo says how to fix it.
    """
    if not isinstance(raw, str):
        raise UnknownKeyError(
            f"key must be a string, got {quote(raw)}; give a name such as CFG_TP_FREQ_TP1"
        )
    text = raw.strip()
    if _HEX_ID.match(text):
        kid = int(text, 16)
        if kid not in _BY_ID:
            raise UnknownKeyError(
                f"Undefined configuration database key {text}; no key has that id"
            )
        name, typ = _BY_ID[kid]
        return CfgKey(name, kid, typ)
    name = text.replace("-", "_").upper()
    if len(name) > _LONGEST_NAME:
        raise UnknownKeyError(
            f"Undefined configuration database key {quote(name)}; no key name is longer than "
            f"{_LONGEST_NAME} characters"
        )
    entry = UBX_CONFIG_DATABASE.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, UBX_CONFIG_DATABASE, n=3, cutoff=0.8)
        hint = (
            f"did you mean {' or '.join(close)}?"
            if close
            else "use a name of the u-blox interface description such as CFG_TP_FREQ_TP1, "
            "or a key id such as 0x40050024"
        )
        raise UnknownKeyError(f"Undefined configuration database key {name}; {hint}")
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
    if isinstance(value, float) and math.isfinite(value) and value == math.floor(value):
        return int(value)
    if isinstance(value, str) and len(value) <= _INTEGER_CHARS:
        text = value.strip()
        try:
            return int(text, 16) if text.lower().startswith(("0x", "-0x")) else int(text, 10)
        except ValueError:
            pass
    raise ValueError(f"{key.name}: {quote(value)} is not an integer; give {key.allowed()}")


def _check_range(key: CfgKey, value: int) -> int:
    constants = ENUMERATIONS.get(key.name) if key.kind == "E" else None
    if constants is not None:
        if value not in constants:
            raise ValueError(f"{key.name}: {quote(value)} is not {key.allowed()}")
        return value
    lo, hi = key.integer_range()
    if not lo <= value <= hi:
        raise ValueError(
            f"{key.name}: {quote(value)} is out of range {lo}..{hi} (type {key.type_name})"
        )
    return value


def coerce_value(key: CfgKey, value: object) -> int | float | bytes:
    """Convert a user value to the Python type pyubx2 needs for `key` (docs/ublox.md, "Values").

    The range is the type's (pyubx2's database), narrowed to the defined constants for the
    enumerations in `ublox.enumerations`. Raises ValueError with a message naming the key and
    saying what it takes (`key.allowed()`).
    """
    kind = key.kind
    if kind == "L":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int | float) and value in (0, 1):
            return int(value)
        raise ValueError(f"{key.name}: {quote(value)} is not a boolean; give {key.allowed()}")
    if kind in "UIE":
        return _check_range(key, _integral(key, value))
    if kind == "R":
        return _real(key, value)
    if kind == "X":
        hex_text = isinstance(value, str) and value.strip().lower().startswith("0x")
        if isinstance(value, bool) or not (isinstance(value, int | float) or hex_text):
            raise ValueError(f"{key.name}: {quote(value)} is not a bit field; give {key.allowed()}")
        return _check_range(key, _integral(key, value)).to_bytes(key.size, "little")
    raise ValueError(f"{key.name}: unsupported type {key.type}")


def _real(key: CfgKey, value: object) -> float:
    number: float | None = None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            number = float(value.strip())
    except (ValueError, OverflowError):  # not a number, or an integer beyond any double
        number = None
    if number is None:
        raise ValueError(f"{key.name}: {quote(value)} is not a number; give {key.allowed()}")
    if not math.isfinite(number):
        raise ValueError(f"{key.name}: {quote(value)} is not finite; give {key.allowed()}")
    if key.size == 4:
        try:
            struct.pack("<f", number)
        except OverflowError:
            raise ValueError(
                f"{key.name}: {quote(value)} does not fit a float32; give {key.allowed()}"
            ) from None
    return number


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
