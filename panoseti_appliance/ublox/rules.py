"""The rules every F9T setting follows, shared by InitF9t and the appliance configuration.

InitF9t's plan (`ublox.plan.validate_config`) judges a flat f9t_config with these functions, and
the configuration models (`config.models`: UbloxConfig, ChipConfig, CfgKeySetting,
PositionConfig) call the same ones from their validators. So `panoseti config check`, the NixOS
build-time check and daemon start refuse what InitF9t would refuse, in the same words. Key names
and value types and ranges are `ublox.values` (pyubx2's configuration database); the rest is here.

Each check raises ValueError saying what is wrong and the fix but not where: each caller names
the field its own way (`cfg_key_settings[0].key` in an InitF9t answer,
`FILE:LINE: ublox.cfg_key_settings[0].key` in a configuration problem).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from panoseti_appliance.runtime.bounded import quote
from panoseti_appliance.ublox.values import KEY_COUNT

#: The settings of an f9t_config a chip entry may override (besides its uid).
F9T_SETTINGS = ("device", "baud", "apply_to_layers", "verify_layer", "cfg_key_settings", "position")
LAYERS = ("RAM", "BBR", "FLASH")
STANDARD_BAUDS = (4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
POSITION_FIELDS = {"LLH": ("lat_deg", "lon_deg", "height_m"), "ECEF": ("x_m", "y_m", "z_m")}
#: Where an antenna on the ground can be: the range of each coordinate (degrees or metres). The
#: TMODE values they become fit their keys (I4 and I1) with room to spare.
COORDINATE_RANGES = {
    "lat_deg": (-90.0, 90.0),
    "lon_deg": (-180.0, 180.0),
    "height_m": (-1000.0, 20_000.0),
    "x_m": (-7e6, 7e6),
    "y_m": (-7e6, 7e6),
    "z_m": (-7e6, 7e6),
}
DEFAULT_ACC_M = 0.05
#: The largest acc_m whose CFG_TMODE_FIXED_POS_ACC (U4, in 0.1 mm) fits, rounded down to metres.
MAX_ACC_M = 429_496.0
#: Linux's longest path, in bytes with the terminating NUL.
PATH_MAX = 4096
_UID = re.compile(r"^[0-9A-F]{10}$")


def receiver_uid(raw: object) -> str:
    """A receiver's SEC-UNIQID as 10 upper-case hex digits (docs/ublox.md, "The UID")."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        # YAML reads an all-digit uid as a number: leading zeros lost, 0-prefixed as octal.
        raise ValueError(
            f"{quote(raw)} was read as a number, not a UID; write the 10 hex digits as a string "
            "(quoted in YAML, e.g. '0102030405')"
        )
    text = raw.strip().upper() if isinstance(raw, str) else ""
    if not _UID.match(text):
        what = "required" if raw is None else f"{quote(raw)} is not a UID"
        raise ValueError(
            f"{what}; give the receiver's SEC-UNIQID as 10 hex digits, e.g. DF03A241BC "
            "(`panoseti ublox poll SEC-UNIQID` shows it)"
        )
    return text


def device(raw: object) -> str:
    """The receiver's serial device (or its udev symlink), surrounding spaces removed: a path the
    kernel can take (shorter than PATH_MAX, no NUL byte)."""
    path = raw.strip() if isinstance(raw, str) else ""
    if not path or "\0" in path or len(path.encode(errors="replace")) >= PATH_MAX:
        what = "required" if raw is None else f"{quote(raw)} is not a device path"
        raise ValueError(f"{what}; give the receiver's serial device, e.g. /dev/ttyACM0")
    return path


def baud(raw: object) -> int:
    """A serial rate the receiver's UART offers (over USB it is ignored, but must be one)."""
    if isinstance(raw, int | float) and not isinstance(raw, bool) and raw in STANDARD_BAUDS:
        return int(raw)
    raise ValueError(
        f"{quote(raw)} is not a standard baud rate; use one of {', '.join(map(str, STANDARD_BAUDS))}"
    )


def layer(raw: object) -> str:
    """A configuration layer name, any case: RAM, BBR (battery-backed) or FLASH."""
    name = raw.strip().upper() if isinstance(raw, str) else ""
    if name not in LAYERS:
        raise ValueError(f"{quote(raw)} is not one of {', '.join(LAYERS)}")
    return name


def layer_list(raw: object) -> list[object]:
    """apply_to_layers: at least one layer (each judged by `layer`)."""
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{quote(raw)} must be a non-empty list of {', '.join(LAYERS)}")
    return raw


def key_setting_count(count: int) -> int:
    """cfg_key_settings: each key at most once, so no more entries than there are keys."""
    if count > KEY_COUNT:
        raise ValueError(
            f"{count} entries, but there are only {KEY_COUNT} configuration keys and each may be "
            "given once"
        )
    return count


def repeated(names: Iterable[str]) -> dict[int, str]:
    """{index: problem} for each item that repeats an earlier one (a layer or a key)."""
    seen: set[str] = set()
    out: dict[int, str] = {}
    for index, name in enumerate(names):
        if name in seen:
            out[index] = f"{name} appears more than once; remove the duplicate"
        seen.add(name)
    return out


def verify_layer(verify: str, layers: Sequence[str]) -> None:
    """The layer read back must be one that is written."""
    if verify not in layers:
        raise ValueError(
            f"verify_layer {verify} is not one of the layers written ({', '.join(layers)}); "
            f"verify one of those or add {verify} to apply_to_layers"
        )


def tmode_conflicts(names: Iterable[str]) -> dict[int, str]:
    """{index: problem} for each TMODE key, which must not be given beside a position."""
    return {
        index: f"{name} conflicts with position, which sets the time mode; give the position "
        "or the TMODE keys, not both"
        for index, name in enumerate(names)
        if name.startswith("CFG_TMODE_")
    }


def position_format(raw: object) -> str:
    """LLH (latitude, longitude, height) or ECEF (x, y, z), any case."""
    name = raw.strip().upper() if isinstance(raw, str) else ""
    if name not in POSITION_FIELDS:
        raise ValueError(f"{quote(raw)} is not LLH or ECEF")
    return name


def _finite(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    try:
        number = float(raw)
    except OverflowError:  # an integer beyond any double
        return None
    return number if math.isfinite(number) else None


def _plain(number: float) -> str:
    """91.0 as 91 and 7e6 as 7000000, for messages; fractions as Python writes them."""
    return str(int(number)) if number.is_integer() else repr(number)


def coordinate(name: str, raw: object) -> float:
    """One position coordinate (`lat_deg`, …, `z_m`): a finite number within its range."""
    lo, hi = COORDINATE_RANGES[name]
    within = f"[{_plain(lo)}, {_plain(hi)}]"
    number = _finite(raw)
    if number is None:
        raise ValueError(f"{quote(raw)} is not a finite number; give one within {within}")
    if not lo <= number <= hi:
        raise ValueError(f"{_plain(number)} is outside {within}")
    return number


def accuracy(raw: object) -> float:
    """acc_m, the accuracy the receiver is told its fixed position has, in metres."""
    number = _finite(raw)
    if number is None or not 0 < number <= MAX_ACC_M:
        raise ValueError(
            f"{quote(raw)} must be a number > 0 and at most {_plain(MAX_ACC_M)} (metres)"
        )
    return number


def position_fields(fmt: str, given: Collection[str]) -> dict[str, str]:
    """{field: problem} for a coordinate the format needs but lacks, or one of the other format."""
    out: dict[str, str] = {}
    for other, fields in POSITION_FIELDS.items():
        for name in fields:
            if other == fmt and name not in given:
                out[name] = f"required for format {fmt}; add it"
            elif other != fmt and name in given:
                out[name] = f"does not belong to format {fmt}; remove it or change format"
    return out


def chip_index(uids: Sequence[str], wanted: str) -> int:
    """The position of the chip with uid `wanted` (any case) among the configured ones."""
    key = wanted.strip().upper()
    for index, uid in enumerate(uids):
        if uid.strip().upper() == key:
            return index
    known = ", ".join(uids) or "none"
    raise ValueError(f"no chip has uid {wanted}; the chips are: {known}")


def merge_chip(general: Mapping[str, Any], chip: Mapping[str, Any]) -> dict[str, Any]:
    """One receiver's flat f9t_config: the general settings, each key the chip gives winning.

    A chip's value replaces the general one whole (its cfg_key_settings the whole list, its
    position the whole position); `f9t_chips`, the list of chips, is not part of the result.
    """
    merged = {k: copy.deepcopy(v) for k, v in general.items() if k != "f9t_chips"}
    merged.update(copy.deepcopy(dict(chip)))
    return merged
