"""The InitF9t plan: validate an f9t_config and turn it into CFG-VALSET messages (docs/ublox.md).

Everything here is pure (no I/O), so a config is judged completely before the receiver is
touched, and every problem is reported at once, one per line, naming the field and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from panoseti_appliance.runtime.bounded import bounded
from panoseti_appliance.ublox import rules
from panoseti_appliance.ublox.values import (
    CfgKey,
    coerce_value,
    display_value,
    key_by_name,
    normalise_key,
)

MAX_KEYS_PER_MESSAGE = 64
SET_LAYER_BITS = {"RAM": 1, "BBR": 2, "FLASH": 4}
POLL_LAYERS = {"RAM": 0, "BBR": 1, "FLASH": 2, "DEFAULT": 7}
DEFAULT_BAUD = 115200
TXN_NONE, TXN_START, TXN_ONGOING, TXN_COMMIT = 0, 1, 2, 3
#: Most characters of an INVALID_CONFIG message, and of one problem in it: well under gRPC's
#: 8 KiB, however many problems a request holds.
SUMMARY_CHARS = 4096
PROBLEM_CHARS = 400
T = TypeVar("T")


class InvalidConfig(ValueError):
    """The f9t_config failed validation; `problems` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))

    def summary(self, limit: int = SUMMARY_CHARS) -> str:
        """The problems one per line, as many whole ones as fit in `limit` characters, then how
        many more there are (a list of 100 000 bad entries has as many problems)."""
        lines: list[str] = []
        used = 0
        for shown, problem in enumerate(self.problems):
            line = bounded(problem, PROBLEM_CHARS)
            if used + len(line) > limit - 80:
                lines.append(f"… and {len(self.problems) - shown} more problems")
                break
            lines.append(line)
            used += len(line) + 1
        return "\n".join(lines)


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


#: Per position format: CFG-TMODE-POS_TYPE, then each axis (field, scale to the key's unit, key
#: stem). The receiver takes each axis as a value plus a high-precision remainder (split_hp).
TMODE_AXES: dict[str, tuple[int, tuple[tuple[str, float, str], ...]]] = {
    "LLH": (1, (("lat_deg", 1e9, "LAT"), ("lon_deg", 1e9, "LON"), ("height_m", 1e4, "HEIGHT"))),
    "ECEF": (0, (("x_m", 1e4, "ECEF_X"), ("y_m", 1e4, "ECEF_Y"), ("z_m", 1e4, "ECEF_Z"))),
}


def tmode_settings(position: dict[str, Any]) -> list[tuple[str, int]]:
    """TMODE key/value pairs for a validated position (LLH or ECEF), in the documented order:
    mode, type, accuracy, the axes, then their high-precision parts."""
    pos_type, axes = TMODE_AXES["LLH" if position["format"] == "LLH" else "ECEF"]
    split = [(stem, *split_hp(round(float(position[name]) * scale))) for name, scale, stem in axes]
    return [
        ("CFG_TMODE_MODE", 2),
        ("CFG_TMODE_POS_TYPE", pos_type),
        ("CFG_TMODE_FIXED_POS_ACC", round(float(position["acc_m"]) * 1e4)),
        *((f"CFG_TMODE_{stem}", value) for stem, value, _ in split),
        *((f"CFG_TMODE_{stem}_HP", hp) for stem, _, hp in split),
    ]


def _checked(problems: list[str], where: str, rule: Callable[..., T], *args: object) -> T | None:
    """Apply one shared rule; its ValueError becomes the problem `where: message`."""
    try:
        return rule(*args)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _validate_position(raw: object, problems: list[str]) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        problems.append("position: must be an object with format LLH or ECEF")
        return None
    before = len(problems)
    fmt = _checked(problems, "position.format", rules.position_format, raw.get("format", "LLH"))
    if fmt is None:
        return None
    out: dict[str, Any] = {"format": fmt}
    wrong = rules.position_fields(fmt, {k for k, v in raw.items() if v is not None})
    problems.extend(f"position.{name}: {problem}" for name, problem in wrong.items())
    for name in rules.POSITION_FIELDS[fmt]:
        if name not in wrong:
            out[name] = _checked(problems, f"position.{name}", rules.coordinate, name, raw[name])
    acc = raw.get("acc_m", rules.DEFAULT_ACC_M)
    out["acc_m"] = _checked(problems, "position.acc_m", rules.accuracy, acc)
    return out if len(problems) == before else None


def _validate_layers(cfg: dict[str, Any], problems: list[str]) -> tuple[list[str], str]:
    raw_layers = _checked(
        problems, "apply_to_layers", rules.layer_list, cfg.get("apply_to_layers", ["RAM"])
    )
    named: list[tuple[int, str]] = []  # (index, canonical name) of the valid layers
    if raw_layers is not None:
        for n, raw in enumerate(raw_layers):
            name = _checked(problems, f"apply_to_layers[{n}]", rules.layer, raw)
            if name is not None:
                named.append((n, name))
    repeats = rules.repeated(name for _, name in named)
    problems.extend(f"apply_to_layers[{named[at][0]}]: {p}" for at, p in repeats.items())
    layers = [name for _, name in named]
    verify = _checked(problems, "verify_layer", rules.layer, cfg.get("verify_layer", "RAM"))
    if verify is not None and layers:
        _checked(problems, "verify_layer", rules.verify_layer, verify, layers)
    return layers, verify or ""


def _validate_items(
    raw: object, has_position: bool, problems: list[str]
) -> tuple[list[PlanItem], list[dict[str, Any]]]:
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        problems.append('cfg_key_settings: must be a list of {"key": name, "value": v}')
        return [], []
    if _checked(problems, "cfg_key_settings", rules.key_setting_count, len(raw)) is None:
        return [], []
    checked: list[tuple[int, CfgKey, Any]] = []  # (index, key, value or None)
    for n, entry in enumerate(raw):
        where = f"cfg_key_settings[{n}]"
        if not isinstance(entry, dict) or "key" not in entry or "value" not in entry:
            problems.append(f'{where}: must be an object {{"key": name, "value": v}}')
            continue
        key = _checked(problems, f"{where}.key", normalise_key, entry["key"])
        if key is not None:
            value = _checked(problems, f"{where}.value", coerce_value, key, entry["value"])
            checked.append((n, key, value))
    names = [key.name for _, key, _ in checked]
    conflicts = {**(rules.tmode_conflicts(names) if has_position else {}), **rules.repeated(names)}
    for at, problem in sorted(conflicts.items()):
        problems.append(f"cfg_key_settings[{checked[at][0]}].key: {problem}")
    items = [
        PlanItem(key, value)
        for at, (_, key, value) in enumerate(checked)
        if value is not None and at not in conflicts
    ]
    echo = [{"key": i.key.name, "value": display_value(i.value)} for i in items]
    return items, echo


def validate_config(cfg: object) -> F9tPlan:
    """Check an f9t_config completely and build its plan; raise InvalidConfig listing every problem.

    The checks are `ublox.rules` and `ublox.values`, which the appliance configuration applies too.
    """
    if not isinstance(cfg, dict):
        raise InvalidConfig(["f9t_config: must be a JSON object"])
    problems: list[str] = []
    device = _checked(problems, "device", rules.device, cfg.get("device")) or ""
    uid = _checked(problems, "f9t_uid", rules.receiver_uid, cfg.get("f9t_uid")) or ""
    baud = _checked(problems, "baud", rules.baud, cfg.get("baud", DEFAULT_BAUD)) or 0
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
        "device": device,
        "f9t_uid": uid,
        "baud": baud,
        "apply_to_layers": layers,
        "verify_layer": verify,
        "cfg_key_settings": echo,
    }
    if position is not None:
        effective["position"] = position
    return F9tPlan(
        device=device,
        f9t_uid=uid,
        baud=baud,
        apply_to_layers=layers,
        verify_layer=verify,
        items=items,
        position=position,
        effective_config=effective,
    )
