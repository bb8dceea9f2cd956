"""The InitF9t plan: validate an f9t_config and turn it into CFG-VALSET messages (docs/ublox.md).

Everything here is pure (no I/O), so a config is judged completely before the receiver is
touched, and every problem is reported at once, one per line, naming the field and the fix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from panoseti_appliance.ublox.values import (
    CfgKey,
    UnknownKeyError,
    coerce_value,
    display_value,
    key_by_name,
    normalise_key,
)

MAX_KEYS_PER_MESSAGE = 64
SET_LAYER_BITS = {"RAM": 1, "BBR": 2, "FLASH": 4}
POLL_LAYERS = {"RAM": 0, "BBR": 1, "FLASH": 2, "DEFAULT": 7}
DEFAULT_BAUD = 115200
DEFAULT_ACC_M = 0.05
TXN_NONE, TXN_START, TXN_ONGOING, TXN_COMMIT = 0, 1, 2, 3
_UID = re.compile(r"^[0-9A-Fa-f]{10}$")


class InvalidConfig(ValueError):
    """The f9t_config failed validation; `problems` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class PlanItem:
    """One key with the exact value pyubx2 will send."""

    key: CfgKey
    value: int | float | bytes


@dataclass(frozen=True)
class ValsetMessage:
    """One CFG-VALSET: its place in the plan, transaction code and items."""

    index: int  # 1-based over the whole plan
    group: int  # 1-based group number
    transaction: int
    items: tuple[PlanItem, ...]


@dataclass
class F9tPlan:
    """A validated config: where the receiver is, what it must be, and how to write and verify it."""

    device: str
    f9t_uid: str
    baud: int
    apply_to_layers: list[str]
    verify_layer: str
    items: list[PlanItem]
    position: dict[str, Any] | None
    effective_config: dict[str, Any] = field(default_factory=dict)

    @property
    def set_mask(self) -> int:
        mask = 0
        for layer in self.apply_to_layers:
            mask |= SET_LAYER_BITS[layer]
        return mask

    @property
    def poll_layer(self) -> int:
        return POLL_LAYERS[self.verify_layer]

    def groups(self) -> list[list[PlanItem]]:
        """Group 1 is CFG_SIGNAL_*; group 2 the rest stable-sorted TMODE, TP, MSGOUT, others."""
        return group_items(self.items)

    def messages(self) -> list[ValsetMessage]:
        return valset_messages(self.groups())


def _rank(item: PlanItem) -> int:
    for rank, prefix in enumerate(("CFG_TMODE_", "CFG_TP_", "CFG_MSGOUT_")):
        if item.key.name.startswith(prefix):
            return rank
    return 3


def group_items(items: list[PlanItem]) -> list[list[PlanItem]]:
    """Split into the signal group (sent first) and everything else; empty groups are dropped."""
    signal = [i for i in items if i.key.name.startswith("CFG_SIGNAL_")]
    rest = sorted((i for i in items if not i.key.name.startswith("CFG_SIGNAL_")), key=_rank)
    return [g for g in (signal, rest) if g]


def chunked(seq: list[Any], size: int = MAX_KEYS_PER_MESSAGE) -> list[list[Any]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def valset_messages(groups: list[list[PlanItem]]) -> list[ValsetMessage]:
    """A group of ≤ 64 items is one v0 VALSET; a larger one a START…ONGOING…COMMIT transaction."""
    out: list[ValsetMessage] = []
    for gno, group in enumerate(groups, start=1):
        chunks = chunked(group)
        for cno, chunk in enumerate(chunks):
            if len(chunks) == 1:
                txn = TXN_NONE
            elif cno == 0:
                txn = TXN_START
            elif cno == len(chunks) - 1:
                txn = TXN_COMMIT
            else:
                txn = TXN_ONGOING
            out.append(ValsetMessage(len(out) + 1, gno, txn, tuple(chunk)))
    return out


def split_hp(scaled: int) -> tuple[int, int]:
    """Split a value in HP units into (main, hp) with floor division, so hp is 0..99."""
    main = scaled // 100
    return main, scaled - 100 * main


def tmode_settings(position: dict[str, Any]) -> list[tuple[str, int]]:
    """TMODE key/value pairs for a validated position (LLH or ECEF), in the documented order."""
    acc = round(float(position["acc_m"]) * 1e4)
    head = [("CFG_TMODE_MODE", 2)]
    if position["format"] == "LLH":
        lat, lat_hp = split_hp(round(float(position["lat_deg"]) * 1e9))
        lon, lon_hp = split_hp(round(float(position["lon_deg"]) * 1e9))
        hgt, hgt_hp = split_hp(round(float(position["height_m"]) * 1e4))
        return [
            *head,
            ("CFG_TMODE_POS_TYPE", 1),
            ("CFG_TMODE_FIXED_POS_ACC", acc),
            ("CFG_TMODE_LAT", lat),
            ("CFG_TMODE_LON", lon),
            ("CFG_TMODE_HEIGHT", hgt),
            ("CFG_TMODE_LAT_HP", lat_hp),
            ("CFG_TMODE_LON_HP", lon_hp),
            ("CFG_TMODE_HEIGHT_HP", hgt_hp),
        ]
    x, x_hp = split_hp(round(float(position["x_m"]) * 1e4))
    y, y_hp = split_hp(round(float(position["y_m"]) * 1e4))
    z, z_hp = split_hp(round(float(position["z_m"]) * 1e4))
    return [
        *head,
        ("CFG_TMODE_POS_TYPE", 0),
        ("CFG_TMODE_FIXED_POS_ACC", acc),
        ("CFG_TMODE_ECEF_X", x),
        ("CFG_TMODE_ECEF_Y", y),
        ("CFG_TMODE_ECEF_Z", z),
        ("CFG_TMODE_ECEF_X_HP", x_hp),
        ("CFG_TMODE_ECEF_Y_HP", y_hp),
        ("CFG_TMODE_ECEF_Z_HP", z_hp),
    ]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(float(value)) else None


_POSITION_FIELDS = {
    "LLH": (("lat_deg", -90.0, 90.0), ("lon_deg", -180.0, 180.0), ("height_m", None, None)),
    "ECEF": (("x_m", None, None), ("y_m", None, None), ("z_m", None, None)),
}


def _validate_position(raw: object, problems: list[str]) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        problems.append("position: must be an object with format LLH or ECEF")
        return None
    fmt = raw.get("format", "LLH")
    fmt = fmt.strip().upper() if isinstance(fmt, str) else fmt
    if fmt not in _POSITION_FIELDS:
        problems.append(f"position.format: {fmt!r} is not LLH or ECEF")
        return None
    out: dict[str, Any] = {"format": fmt}
    before = len(problems)
    for name, lo, hi in _POSITION_FIELDS[fmt]:
        if name not in raw:
            problems.append(f"position.{name}: required for format {fmt}")
            continue
        num = _number(raw[name])
        if num is None:
            problems.append(f"position.{name}: {raw[name]!r} is not a finite number")
        elif lo is not None and hi is not None and not lo <= num <= hi:
            problems.append(f"position.{name}: {num} is outside [{lo:g}, {hi:g}]")
        else:
            out[name] = num
    acc = _number(raw.get("acc_m", DEFAULT_ACC_M))
    if acc is None or acc <= 0:
        problems.append(f"position.acc_m: {raw.get('acc_m')!r} must be a number > 0 (metres)")
    else:
        out["acc_m"] = acc
    if len(problems) != before:
        return None
    for name, value in tmode_settings(out):
        try:
            coerce_value(key_by_name(name), value)
        except ValueError as exc:
            problems.append(f"position: {exc}")
    return out if len(problems) == before else None


def _validate_layers(cfg: dict[str, Any], problems: list[str]) -> tuple[list[str], str]:
    raw_layers = cfg.get("apply_to_layers", ["RAM"])
    layers: list[str] = []
    if not isinstance(raw_layers, list) or not raw_layers:
        problems.append("apply_to_layers: must be a non-empty list of RAM, BBR, FLASH")
    else:
        for layer in raw_layers:
            name = layer.strip().upper() if isinstance(layer, str) else layer
            if name not in SET_LAYER_BITS:
                problems.append(f"apply_to_layers: {layer!r} is not one of RAM, BBR, FLASH")
            elif name not in layers:
                layers.append(name)
    raw_verify = cfg.get("verify_layer", "RAM")
    verify = raw_verify.strip().upper() if isinstance(raw_verify, str) else ""
    if verify not in SET_LAYER_BITS:
        problems.append(f"verify_layer: {raw_verify!r} is not one of RAM, BBR, FLASH")
    elif layers and verify not in layers:
        problems.append(
            f"verify_layer: {verify} is not among apply_to_layers {layers}; "
            "verify a layer that is written"
        )
    return layers, verify


def _validate_items(
    raw: object, has_position: bool, problems: list[str]
) -> tuple[list[PlanItem], list[dict[str, Any]]]:
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        problems.append('cfg_key_settings: must be a list of {"key": name, "value": v}')
        return [], []
    items: list[PlanItem] = []
    echo: list[dict[str, Any]] = []
    seen: set[int] = set()
    for n, entry in enumerate(raw):
        where = f"cfg_key_settings[{n}]"
        if not isinstance(entry, dict) or "key" not in entry or "value" not in entry:
            problems.append(f'{where}: must be an object {{"key": name, "value": v}}')
            continue
        try:
            key = normalise_key(entry["key"])
        except UnknownKeyError as exc:
            problems.append(f"{where}.key: {exc}")
            continue
        if key.key_id in seen:
            problems.append(f"{where}.key: {key.name} appears more than once")
            continue
        seen.add(key.key_id)
        if has_position and key.name.startswith("CFG_TMODE_"):
            problems.append(
                f"{where}.key: {key.name} conflicts with position; "
                "give the position or the TMODE keys, not both"
            )
            continue
        try:
            value = coerce_value(key, entry["value"])
        except ValueError as exc:
            problems.append(f"{where}.value: {exc}")
            continue
        items.append(PlanItem(key, value))
        echo.append({"key": key.name, "value": display_value(value)})
    return items, echo


def validate_config(cfg: object) -> F9tPlan:
    """Check an f9t_config completely and build its plan; raise InvalidConfig listing every problem."""
    if not isinstance(cfg, dict):
        raise InvalidConfig(["f9t_config: must be a JSON object"])
    problems: list[str] = []
    device = cfg.get("device")
    if not isinstance(device, str) or not device.strip():
        problems.append("device: required; give the receiver's serial device, e.g. /dev/ttyACM0")
        device = ""
    uid = cfg.get("f9t_uid")
    if not isinstance(uid, str) or not _UID.match(uid.strip()):
        problems.append(
            f"f9t_uid: {uid!r} must be the receiver's 10-hex-digit SEC-UNIQID, e.g. DF03A241BC"
        )
        uid = ""
    baud_raw = cfg.get("baud", DEFAULT_BAUD)
    baud = _number(baud_raw)
    if baud is None or baud <= 0 or baud != math.floor(baud):
        problems.append(f"baud: {baud_raw!r} must be a positive integer, e.g. 115200")
        baud = DEFAULT_BAUD
    layers, verify = _validate_layers(cfg, problems)
    position = None
    if cfg.get("position") is not None:
        position = _validate_position(cfg["position"], problems)
    items, echo = _validate_items(
        cfg.get("cfg_key_settings"), cfg.get("position") is not None, problems
    )
    if problems:
        raise InvalidConfig(problems)
    if position is not None:
        items += [PlanItem(key_by_name(n), v) for n, v in tmode_settings(position)]
    effective: dict[str, Any] = {
        "device": device.strip(),
        "f9t_uid": uid.strip().upper(),
        "baud": int(baud),
        "apply_to_layers": layers,
        "verify_layer": verify,
        "cfg_key_settings": echo,
    }
    if position is not None:
        effective["position"] = position
    return F9tPlan(
        device=device.strip(),
        f9t_uid=uid.strip().upper(),
        baud=int(baud),
        apply_to_layers=layers,
        verify_layer=verify,
        items=items,
        position=position,
        effective_config=effective,
    )
