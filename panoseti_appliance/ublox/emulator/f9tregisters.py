"""The emulated ZED-F9T's configuration registers: key table, layers, VALSET transactions, VALGET.

This is the receiver-side behaviour of CFG-VALSET/CFG-VALGET (docs/emulator.md, "What it
answers"), kept apart from the pty plumbing so it can be read against that table line by line.
Values are stored as the raw little-endian bytes the host sent, exactly as the receiver keeps
them; `value()` decodes them with the key's type for inspection.
"""

from __future__ import annotations

import csv
import struct
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyubx2 import UBX_CONFIG_DATABASE

from panoseti_appliance.ublox.ubxframes import key_value_size

MAX_KEYS = 64
#: VALSET layer bits -> name, and VALGET layer number -> name.
SET_LAYERS = {1: "RAM", 2: "BBR", 4: "FLASH"}
POLL_LAYERS = {0: "RAM", 1: "BBR", 2: "FLASH", 7: "DEFAULT"}
STORED_LAYERS = ("RAM", "BBR", "FLASH")
#: VALSET v1 transaction actions.
TXN_NONE, TXN_START, TXN_ONGOING, TXN_COMMIT = 0, 1, 2, 3

CSV_HEADER = [
    "Configuration item",
    "Key ID",
    "Type",
    "Scale",
    "Unit",
    "Default value",
    "Description",
]


class MalformedError(ValueError):
    """A VALSET/VALGET payload the receiver cannot parse (it answers ACK-NAK)."""


@dataclass(frozen=True)
class KeyDef:
    """One configuration item: id, name, pyubx2-style type (`U001`, `R008`, `L001`) and default."""

    key_id: int
    name: str
    type: str
    default: bytes

    @property
    def size(self) -> int:
        return key_value_size(self.key_id)


def _type_width(typ: str) -> int:
    return int(typ[1:]) if len(typ) > 1 else 1


def encode_value(typ: str, value: Any, size: int) -> bytes:
    """The wire bytes of `value` for a key of pyubx2 type `typ` occupying `size` bytes.

    Raises ValueError/TypeError naming the type when the value cannot be represented.
    """
    kind = typ[0]
    if kind == "X" and isinstance(value, bytes | bytearray):
        if len(value) != size:
            raise ValueError(f"X value must be {size} bytes, got {len(value)}")
        return bytes(value)
    if kind == "R":
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise TypeError(f"{typ} value must be a number, got {value!r}")
        return struct.pack("<f" if size == 4 else "<d", float(value))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise TypeError(f"{typ} value must be an integer, got {value!r}")
    return int(value).to_bytes(size, "little", signed=kind == "I")


def decode_value(typ: str, raw: bytes) -> Any:
    """The Python value of wire bytes for a key of pyubx2 type `typ` (int, float or bytes)."""
    kind = typ[0]
    if kind == "R":
        return struct.unpack("<f" if len(raw) == 4 else "<d", raw)[0]
    if kind == "X":
        return raw
    return int.from_bytes(raw, "little", signed=kind == "I")


def _csv_type(text: str, where: str) -> str:
    """`U1`, `L`, `R8`, `X2`, `U001` -> pyubx2 style `U001`."""
    t = text.strip().upper()
    if not t or t[0] not in "UIELRX" or (len(t) > 1 and not t[1:].isdigit()):
        raise ValueError(
            f"{where}: Type {text!r} is not one of U1..U8, I1..I8, E1..E4, L, R4, R8, X1..X8"
        )
    return f"{t[0]}{_type_width(t):03d}"


def _csv_default(text: str, typ: str, size: int, where: str) -> bytes:
    t = text.strip().lower()
    try:
        if t in ("", "-"):
            value: Any = 0
        elif t in ("true", "false"):
            value = int(t == "true")
        elif t.startswith(("0x", "-0x")):
            value = int(t, 16)
        elif typ[0] == "R":
            value = float(t)
        else:
            value = float(t) if any(c in t for c in ".e") else int(t)
        return encode_value(typ, value, size)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(
            f"{where}: Default value {text!r} does not fit type {typ}: {exc}; "
            "give a decimal, 0x-hex or true/false value"
        ) from exc


class KeyTable:
    """The keys the receiver knows, by id and by name, with their defaults."""

    def __init__(self, keys: Iterable[KeyDef]) -> None:
        self.by_id: dict[int, KeyDef] = {k.key_id: k for k in keys}
        self.by_name: dict[str, KeyDef] = {k.name: k for k in self.by_id.values()}

    @classmethod
    def from_database(cls) -> KeyTable:
        """Every key in pyubx2's configuration database, all defaulting to zero."""
        keys = []
        for name, (key_id, typ) in UBX_CONFIG_DATABASE.items():
            size = key_value_size(key_id)
            keys.append(KeyDef(key_id, name, typ, bytes(size)))
        return cls(keys)

    @classmethod
    def from_csv(cls, path: str | Path) -> KeyTable:
        """Only the keys of a u-blox register CSV, with its default values (raw, unscaled)."""
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        if not rows or [c.strip() for c in rows[0]] != CSV_HEADER:
            raise ValueError(
                f"register CSV {path}: first line must be the header {','.join(CSV_HEADER)}"
            )
        keys = []
        for lineno, row in enumerate(rows[1:], start=2):
            if not any(c.strip() for c in row):
                continue
            where = f"register CSV {path} line {lineno}"
            if len(row) < 6:
                raise ValueError(f"{where}: expected 7 columns, got {len(row)}")
            name = row[0].strip().replace("-", "_").upper()
            try:
                key_id = int(row[1].strip(), 0)
                size = key_value_size(key_id)
            except ValueError as exc:
                raise ValueError(
                    f"{where}: Key ID {row[1]!r} is not a valid 0x-hex key id"
                ) from exc
            typ = _csv_type(row[2], where)
            keys.append(KeyDef(key_id, name, typ, _csv_default(row[5], typ, size, where)))
        if not keys:
            raise ValueError(f"register CSV {path}: no configuration items after the header")
        return cls(keys)

    def lookup(self, key: int | str) -> KeyDef:
        """A key by id or by name (`-` or `_`, any case); KeyError if the receiver does not know it."""
        if isinstance(key, int):
            return self.by_id[key]
        return self.by_name[key.strip().replace("-", "_").upper()]


def _pairs(data: bytes, table: KeyTable, unknown: set[int]) -> list[tuple[KeyDef, bytes]]:
    """Split VALSET key/value pairs; MalformedError on truncation, KeyError on an unknown key."""
    pairs: list[tuple[KeyDef, bytes]] = []
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise MalformedError("truncated key id")
        key_id = int.from_bytes(data[pos : pos + 4], "little")
        try:
            size = key_value_size(key_id)
        except ValueError as exc:
            raise MalformedError(str(exc)) from exc
        if pos + 4 + size > len(data):
            raise MalformedError(f"truncated value of key 0x{key_id:08x}")
        if key_id in unknown or key_id not in table.by_id:
            raise KeyError(key_id)
        pairs.append((table.by_id[key_id], data[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    if len(pairs) > MAX_KEYS:
        raise MalformedError(f"{len(pairs)} pairs exceed {MAX_KEYS}")
    return pairs


@dataclass
class _Transaction:
    layers: int
    staged: list[tuple[KeyDef, bytes]]


class RegisterStore:
    """RAM/BBR/FLASH contents plus the open VALSET transaction, safe to use from several threads.

    `valset` and `valget` take the fault-injection state (`unknown` ids to NAK, `mismatch` values
    to store instead of the requested ones) per call, so a test may change it while running.
    """

    def __init__(self, table: KeyTable) -> None:
        self.table = table
        self._lock = threading.Lock()
        self._layers: dict[str, dict[int, bytes]] = {name: {} for name in STORED_LAYERS}
        self._txn: _Transaction | None = None

    @property
    def transaction_open(self) -> bool:
        with self._lock:
            return self._txn is not None

    def cancel_transaction(self) -> None:
        with self._lock:
            self._txn = None

    def valset(self, payload: bytes, *, unknown: set[int], mismatch: Mapping[int, Any]) -> bool:
        """Apply one CFG-VALSET payload; True means ACK-ACK, False ACK-NAK (nothing applied).

        Raises ValueError, before storing anything, if a `mismatch` value does not fit its key.
        """
        with self._lock:
            try:
                layers, action, pairs = self._parse_valset(payload, unknown)
            except (MalformedError, KeyError):
                self._txn = None
                return False
            if action == TXN_NONE:
                self._txn = None
                self._apply(layers, pairs, mismatch)
                return True
            if action == TXN_START:
                self._txn = _Transaction(layers, list(pairs))
                return True
            if self._txn is None or self._txn.layers != layers:
                self._txn = None
                return False
            self._txn.staged.extend(pairs)
            if action == TXN_COMMIT:
                self._apply(layers, self._txn.staged, mismatch)
                self._txn = None
            return True

    def power_cycle(self) -> None:
        """Reboot: drop any transaction and rebuild RAM from FLASH, then BBR (which wins)."""
        with self._lock:
            self._txn = None
            self._layers["RAM"] = {**self._layers["FLASH"], **self._layers["BBR"]}

    def _parse_valset(
        self, payload: bytes, unknown: set[int]
    ) -> tuple[int, int, list[tuple[KeyDef, bytes]]]:
        if len(payload) < 4:
            raise MalformedError("VALSET payload shorter than its 4-byte header")
        version, layers = payload[0], payload[1] & 0x07
        if version not in (0, 1) or layers == 0:
            raise MalformedError(f"version {version}, layers 0x{payload[1]:02x}")
        action = payload[2] & 0x03 if version == 1 else TXN_NONE
        return layers, action, _pairs(payload[4:], self.table, unknown)

    def _apply(
        self, layers: int, pairs: list[tuple[KeyDef, bytes]], mismatch: Mapping[int, Any]
    ) -> None:
        stored: dict[int, bytes] = {}
        for key, raw in pairs:
            stored[key.key_id] = raw
            if key.key_id in mismatch:
                try:
                    stored[key.key_id] = encode_value(key.type, mismatch[key.key_id], key.size)
                except (TypeError, ValueError, OverflowError) as exc:
                    raise ValueError(
                        f"mismatch[0x{key.key_id:08x}] ({key.name}, {key.type}): {exc}"
                    ) from exc
        for bit, name in SET_LAYERS.items():
            if layers & bit:
                self._layers[name].update(stored)

    def valget(self, payload: bytes, *, unknown: set[int]) -> bytes | None:
        """Answer one CFG-VALGET poll: the VALGET v1 response payload, or None for ACK-NAK.

        Any VALGET cancels an open VALSET transaction, as on the receiver.
        """
        with self._lock:
            self._txn = None
            if len(payload) < 4 or (len(payload) - 4) % 4:
                return None
            layer = POLL_LAYERS.get(payload[1])
            ids = [int.from_bytes(payload[i : i + 4], "little") for i in range(4, len(payload), 4)]
            if layer is None or not ids or len(ids) > MAX_KEYS:
                return None
            if any(k in unknown or k not in self.table.by_id for k in ids):
                return None
            out = bytearray(bytes((1, payload[1])) + payload[2:4])
            found = 0
            for key_id in ids:
                raw = self._read(self.table.by_id[key_id], layer)
                if raw is not None:
                    out += key_id.to_bytes(4, "little") + raw
                    found += 1
            return bytes(out) if found else None

    def _read(self, key: KeyDef, layer: str) -> bytes | None:
        if layer == "DEFAULT":
            return key.default
        stored = self._layers[layer].get(key.key_id)
        if stored is None and layer == "RAM":
            return key.default
        return stored

    def value(self, key: int | str, layer: str = "RAM") -> Any:
        """The decoded value a VALGET on `layer` would report, or None if that layer has none."""
        kdef = self.table.lookup(key)
        name = layer.strip().upper()
        if name not in POLL_LAYERS.values():
            raise ValueError(f"layer {layer!r} is not one of RAM, BBR, FLASH, DEFAULT")
        with self._lock:
            raw = self._read(kdef, name)
        return None if raw is None else decode_value(kdef.type, raw)

    def raw_ram(self, key_id: int) -> int:
        """The RAM value of an integer key as an unsigned int (0 if the key is unknown)."""
        kdef = self.table.by_id.get(key_id)
        if kdef is None:
            return 0
        with self._lock:
            raw = self._read(kdef, "RAM")
        return int.from_bytes(raw or b"", "little")
