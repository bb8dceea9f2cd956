"""The original panoseti_grpc JSON/JSON5 config files, translated into the appliance's layout.

Supported (docs/configuration.md, "Checking and inspecting"): `daq_data_server_config.json`,
hp_io files (`hp_io_config*.json`), `f9t_config.json5` (general keys plus `f9t_chips`, chip keys
winning), `ublox_control_server_config.json`, `daq_config.json` and `network_config.json`, given
as a file or as its parsed dict. The kind is taken from the file name, else from the keys. Each
becomes a `Layer` whose origins name the original file and line, so validation errors point into
the file the operator actually wrote. This is the only reading of those formats: the loader
merges the layer with the others, `config.importers` validates it into typed models for clients.

Keys the original never used are accepted with a deprecation warning; keys nobody knows are warned
about with their location and dropped, except in an hp_io file: it is the InitHpIo payload, one
key for one setting, so an unknown key there is an error of the hp_io section like in YAML.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panoseti_appliance.config.files import FileProblems
from panoseti_appliance.config.jsonfile import read_json5
from panoseti_appliance.config.sources import KeyPath, Layer, dotted

#: An original file: its path, or its contents already parsed (a client's dict).
OriginalSource = str | os.PathLike[str] | Mapping[str, Any]

ORIGINAL_SUFFIXES = (".json", ".json5")

#: Dead keys of the original daq_data_server_config.json (they configured nothing).
DEAD_DAQ_SERVER_KEYS = frozenset(
    {
        "max_read_queue_size",
        "max_reader_enqueue_timeouts",
        "max_reader_dequeue_timeouts",
        "reader_timeout",
        "valid_data_products",
        "simulate_daq_cfg.source_data.real_module_id",
    }
)

_DAQ_SERVER_MAP: dict[str, str] = {
    "init_from_default": "daqdata.init_from_default",
    "max_concurrent_rpcs": "daqdata.max_concurrent_rpcs",
    "min_hp_io_update_interval_seconds": "daqdata.min_hp_io_update_interval_seconds",
    "max_client_update_interval_seconds": "daqdata.max_client_update_interval_seconds",
    "shutdown_grace_period": "daqdata.shutdown_grace_period",
    "hp_io_stop_timeout": "daqdata.hp_io_stop_timeout",
    "read_status_pipe_name": "daqdata.filesystem_pipe.pipe_name",
    "acquisition_methods.filesystem_poll.enabled": "daqdata.filesystem_poll.enabled",
    "acquisition_methods.filesystem_pipe.enabled": "daqdata.filesystem_pipe.enabled",
    "acquisition_methods.uds.enabled": "daqdata.hashpipe.enabled",
    "acquisition_methods.uds.data_products": "daqdata.hashpipe.data_products",
    "acquisition_methods.uds.socket_path_template": "daqdata.hashpipe.socket_template",
    "acquisition_methods.uds.read_timeout": "daqdata.hashpipe.read_timeout_seconds",
    "simulate_daq_cfg.simulation_mode": "daqdata.simulator.mode",
    "simulate_daq_cfg.sim_module_ids": "daqdata.simulator.module_ids",
    "simulate_daq_cfg.movie_type": "daqdata.simulator.movie_type",
    "simulate_daq_cfg.ph_type": "daqdata.simulator.ph_type",
    "simulate_daq_cfg.update_interval_seconds": "daqdata.simulator.update_interval_seconds",
    "simulate_daq_cfg.source_data.movie_pff_path": "daqdata.simulator.movie_pff_path",
    "simulate_daq_cfg.source_data.ph_pff_path": "daqdata.simulator.ph_pff_path",
    "simulate_daq_cfg.filesystem_cfg.sim_data_dir": "daqdata.simulator.sim_data_dir",
    "simulate_daq_cfg.filesystem_cfg.sim_run_dir_template": "daqdata.simulator.sim_run_dir_template",
    "simulate_daq_cfg.filesystem_cfg.daq_active_file": "daqdata.simulator.daq_active_file",
    "simulate_daq_cfg.strategies.filesystem_poll.frames_per_pff": "daqdata.simulator.frames_per_pff",
    "simulate_daq_cfg.strategies.filesystem_poll.frame_limit": "daqdata.simulator.frame_limit",
    "simulate_daq_cfg.strategies.filesystem_pipe.frames_per_pff": "daqdata.simulator.frames_per_pff",
    "simulate_daq_cfg.strategies.filesystem_pipe.frame_limit": "daqdata.simulator.frame_limit",
    "simulate_daq_cfg.strategies.uds.data_products": "daqdata.simulator.uds_data_products",
}
_HP_IO_KEYS = ("data_dir", "update_interval_seconds", "force", "simulate_daq", "module_ids")
_UBLOX_SERVER_MAP = {
    "max_read_queue_size": "ublox.max_read_queue_size",
    "shutdown_grace_period": "ublox.shutdown_grace_period",
}
_F9T_GENERAL = ("device", "baud", "apply_to_layers", "verify_layer", "cfg_key_settings", "position")
_F9T_IGNORED = frozenset({"register_csv", "host", "port", "comments"})
_DAQ_NODE_KEYS = {
    "ip_addr": "ip_addr",
    "data_dir": "data_dir",
    "module_ids": "module_ids",
    "username": "username",
    "user_name": "username",
    "bindhost": "bindhost",
}


@dataclass
class _Translation:
    """The new-layout data being built from one original file, with origins and warnings."""

    name: str
    kind: str
    lines: dict[KeyPath, int]
    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[KeyPath, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def where(self, path: KeyPath) -> str:
        """`NAME:LINE` of the original key path (a parsed dict has no lines: `NAME`)."""
        for cut in range(len(path), 0, -1):
            if path[:cut] in self.lines:
                return f"{self.name}:{self.lines[path[:cut]]}"
        return f"{self.name}:1" if self.lines else self.name

    def put(self, new_path: KeyPath, value: Any, original: KeyPath) -> None:
        node = self.data
        for part in new_path[:-1]:
            node = node.setdefault(str(part), {})
        node[str(new_path[-1])] = value
        self.origins[new_path] = self.where(original)
        _record_nested(self, new_path, value, original)

    def warn(self, original: KeyPath, message: str) -> None:
        self.warnings.append(f"{self.where(original)}: {_dotted(original)}: {message}")

    def problem(self, original: KeyPath, message: str) -> None:
        self.problems.append(f"{self.where(original)}: {_dotted(original)}: {message}")

    def unknown(self, original: KeyPath) -> None:
        self.warn(original, f"unknown key in a {self.kind} file; ignored (check its spelling)")


def _record_nested(tr: _Translation, new_path: KeyPath, value: Any, original: KeyPath) -> None:
    """Give every item and key inside a copied value the original line of that item."""
    if isinstance(value, dict):
        for key, item in value.items():
            tr.origins[(*new_path, key)] = tr.where((*original, key))
            _record_nested(tr, (*new_path, key), item, (*original, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            tr.origins[(*new_path, index)] = tr.where((*original, index))
            _record_nested(tr, (*new_path, index), item, (*original, index))


def _dotted(path: KeyPath) -> str:
    return dotted(path) or "top level"


def _split(dotted_path: str) -> KeyPath:
    return tuple(dotted_path.split("."))


def detect_kind(path: Path, data: Mapping[str, Any]) -> str:
    """Which original file this is: by name first, then by its keys."""
    name = path.name.lower()
    for kind in ("daq_data_server_config", "ublox_control_server_config", "hp_io_config"):
        if name.startswith(kind):
            return kind
    if "f9t" in name:
        return "f9t_config"
    if name.startswith("network_config"):
        return "network_config"
    if name.startswith("daq_config"):
        return "daq_config"
    keys = set(data)
    if keys & {
        "acquisition_methods",
        "simulate_daq_cfg",
        "unix_domain_socket",
        "max_concurrent_rpcs",
    }:
        return "daq_data_server_config"
    if keys & {"f9t_chips", "f9t_uid", "cfg_key_settings", "apply_to_layers"}:
        return "f9t_config"
    if "max_workers" in keys or (keys and keys <= set(_UBLOX_SERVER_MAP)):
        return "ublox_control_server_config"
    if "daq_nodes" in keys:
        nodes = data.get("daq_nodes")
        forwarded = isinstance(nodes, list) and any(
            isinstance(n, dict) and "port_forwarding" in n for n in nodes
        )
        return "network_config" if "modules" in keys or forwarded else "daq_config"
    if keys & set(_HP_IO_KEYS):
        return "hp_io_config"
    raise FileProblems(
        [
            f"{path}:1: cannot tell which original config this is; expected "
            "daq_data_server_config.json, hp_io_config*.json, f9t_config.json5, "
            "ublox_control_server_config.json, daq_config.json or network_config.json"
        ]
    )


def _map_keys(
    tr: _Translation,
    node: dict[str, Any],
    table: dict[str, str],
    dead: frozenset[str],
    prefix: KeyPath = (),
) -> None:
    """Copy every key of `node` found in `table`; warn about dead and unknown ones."""
    for key, value in node.items():
        original = (*prefix, key)
        dotted_key = ".".join(str(p) for p in original)
        if dotted_key in dead:
            tr.warn(
                original, "deprecated: the original never used this key; it is ignored, remove it"
            )
        elif dotted_key in table:
            tr.put(_split(table[dotted_key]), value, original)
        elif isinstance(value, dict) and any(k.startswith(dotted_key + ".") for k in table):
            _map_keys(tr, value, table, dead, original)
        elif (
            isinstance(value, dict)
            and not value
            and dotted_key == "simulate_daq_cfg.strategies.rpc"
        ):
            continue  # the rpc strategy had no settings
        else:
            tr.unknown(original)


def _daq_server(tr: _Translation, data: dict[str, Any], base: Path | None) -> None:
    rest = {
        k: v
        for k, v in data.items()
        if k not in {"unix_domain_socket", "default_hp_io_config_file"}
    }
    _map_keys(tr, rest, _DAQ_SERVER_MAP, DEAD_DAQ_SERVER_KEYS)
    template = tr.data.get("daqdata", {}).get("hashpipe", {}).get("socket_template")
    if isinstance(template, str):
        tr.data["daqdata"]["hashpipe"]["socket_template"] = template.replace("{dp_name}", "{dp}")
    if "unix_domain_socket" in data:
        socket = data["unix_domain_socket"]
        listen = ["0.0.0.0:50051", socket] if socket else ["0.0.0.0:50051"]
        tr.put(("daqdata", "listen"), listen, ("unix_domain_socket",))
    hp_io_name = data.get("default_hp_io_config_file")
    if isinstance(hp_io_name, str) and hp_io_name:
        hp_io_path = (base or Path()) / hp_io_name
        if base is not None and hp_io_path.is_file():
            hp_io = import_original(hp_io_path, expect="hp_io_config")
            tr.warnings.extend(hp_io.warnings)
            for section, values in hp_io.data.items():
                tr.data.setdefault(section, {}).update(values)
            tr.origins.update(hp_io.origins)
        else:
            tr.warn(
                ("default_hp_io_config_file",),
                f"{hp_io_path} not found; hp_io keeps its defaults (import that file too)",
            )


def _hp_io(tr: _Translation, data: dict[str, Any], base: Path | None) -> None:
    for key, value in data.items():
        # The original clients took an empty data_dir for "the node's, from daq_config".
        if key != "comments" and not (key == "data_dir" and value == ""):
            tr.put(("hp_io", key), value, (key,))
    if "update_interval_seconds" not in data:
        tr.problem(
            ("update_interval_seconds",),
            'required in an hp_io config; add it, e.g. "update_interval_seconds": 0.1 (seconds)',
        )


def _ublox_server(tr: _Translation, data: dict[str, Any], base: Path | None) -> None:
    _map_keys(tr, data, _UBLOX_SERVER_MAP, frozenset({"max_workers"}))


def _f9t(tr: _Translation, data: dict[str, Any], base: Path | None) -> None:
    for key, value in data.items():
        if key in _F9T_GENERAL:
            tr.put(("ublox", key), value, (key,))
        elif key in _F9T_IGNORED:
            tr.warn((key,), "not used by the appliance; ignored")
        elif key not in {"f9t_chips", "f9t_uid"}:
            tr.unknown((key,))
    chips = data.get("f9t_chips")
    if chips is None:
        chips = [{"f9t_uid": data["f9t_uid"]}] if "f9t_uid" in data else []
        chip_path: KeyPath = ()
    else:
        chip_path = ("f9t_chips",)
        if not isinstance(chips, list):
            tr.problem(chip_path, "must be a list of chip objects, each with f9t_uid and device")
            return
    out: list[dict[str, Any]] = []
    for index, chip in enumerate(chips):
        where: KeyPath = (*chip_path, index) if chip_path else ("f9t_uid",)
        if not isinstance(chip, dict):
            tr.problem(where, "each chip must be an object with f9t_uid and device")
            continue
        if "f9t_uid" not in chip:
            tr.problem(
                where,
                'chip has no f9t_uid; add the receiver\'s 10-hex-digit SEC-UNIQID, e.g. "f9t_uid": "DF03A241BC"',
            )
            continue
        entry: dict[str, Any] = {}
        for key, value in chip.items():
            if key == "f9t_uid":
                entry["uid"] = value
            elif key in _F9T_GENERAL:
                entry[key] = value
            elif key in _F9T_IGNORED:
                tr.warn((*where, key), "not used by the appliance; ignored")
            else:
                tr.unknown((*where, key))
        out.append(entry)
    if out or chip_path:
        tr.put(("ublox", "chips"), out, chip_path or ("f9t_uid",))
        for index in range(len(out)):
            original = (*chip_path, index) if chip_path else ("f9t_uid",)
            tr.origins[("ublox", "chips", index)] = tr.where(original)
            for key in out[index]:
                source_key = "f9t_uid" if key == "uid" else key
                tr.origins[("ublox", "chips", index, key)] = tr.where((*original, source_key))


def _daq_nodes(tr: _Translation, data: dict[str, Any]) -> list[Any] | None:
    """The `daq_nodes` list; None (and a problem) when it is missing or empty.

    daq_config.json and network_config.json share this list and this rule.
    """
    nodes = data.get("daq_nodes")
    if not isinstance(nodes, list) or not nodes:
        tr.problem(
            ("daq_nodes",), "daq_nodes is empty or missing; list the DAQ nodes with their ip_addr"
        )
        return None
    return nodes


def _daq_config(tr: _Translation, data: dict[str, Any], base: Path | None) -> None:
    for key, value in data.items():
        if key in {"head_node_ip_addr", "head_node_data_dir"}:
            tr.put(("observatory", key), value, (key,))
        elif key != "daq_nodes":
            tr.unknown((key,))
    nodes = _daq_nodes(tr, data)
    if nodes is None:
        return
    out: list[Any] = []
    for index, node in enumerate(nodes):
        where: KeyPath = ("daq_nodes", index)
        if not isinstance(node, dict):
            out.append(node)  # the node model says what it must be
            continue
        entry: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DAQ_NODE_KEYS:
                entry[_DAQ_NODE_KEYS[key]] = value
            else:
                tr.unknown((*where, key))
        out.append(entry)
    tr.put(("observatory", "daq_nodes"), out, ("daq_nodes",))
    for index, node in enumerate(out):
        tr.origins[("observatory", "daq_nodes", index)] = tr.where(("daq_nodes", index))
        for key in node if isinstance(node, dict) else ():
            tr.origins[("observatory", "daq_nodes", index, key)] = tr.where(("daq_nodes", index))


def _network_config(tr: _Translation, data: dict[str, Any], base: Path | None) -> None:
    for key in data:
        if key == "modules":
            tr.warn((key,), "used by other PANOSETI tools, not by the appliance; ignored")
        elif key != "daq_nodes":
            tr.unknown((key,))
    forwarding: dict[str, Any] = {}
    for index, node in enumerate(_daq_nodes(tr, data) or ()):
        where: KeyPath = ("daq_nodes", index)
        if not isinstance(node, dict) or "ip_addr" not in node:
            tr.problem(where, "node has no ip_addr; add the address its port_forwarding is for")
            continue
        for key in node:
            if key not in {"ip_addr", "port_forwarding"}:
                tr.unknown((*where, key))
        if "port_forwarding" in node:
            ip = str(node["ip_addr"])
            forwarding[ip] = node["port_forwarding"]
            tr.origins[("observatory", "port_forwarding", ip)] = tr.where(
                (*where, "port_forwarding")
            )
    if forwarding:
        tr.data.setdefault("observatory", {})["port_forwarding"] = forwarding
        tr.origins.setdefault(("observatory", "port_forwarding"), tr.where(("daq_nodes",)))


_TRANSLATORS: dict[str, Callable[[_Translation, dict[str, Any], Path | None], None]] = {
    "daq_data_server_config": _daq_server,
    "hp_io_config": _hp_io,
    "ublox_control_server_config": _ublox_server,
    "f9t_config": _f9t,
    "daq_config": _daq_config,
    "network_config": _network_config,
}


@dataclass
class ImportedFile:
    """One original file in the new layout, ready to become a layer."""

    kind: str
    name: str
    data: dict[str, Any]
    origins: dict[KeyPath, str]
    warnings: list[str]

    def layer(self) -> Layer:
        return Layer(name=self.name, data=self.data, origins=self.origins, default_origin=self.name)


def is_original(path: Path) -> bool:
    return path.suffix.lower() in ORIGINAL_SUFFIXES


def import_original(
    source: OriginalSource, expect: str | None = None, name: str | None = None
) -> ImportedFile:
    """Translate one original file (a path, or its parsed dict named `name` in messages).

    The kind is `expect`, else detected from the file name and keys. FileProblems lists every
    problem that makes the file unusable, each naming the file, the line and the fix.
    """
    lines: dict[KeyPath, int] = {}
    base: Path | None = None
    if isinstance(source, Mapping):
        data = dict(source)
        label = name or expect or "config"
        path = Path(label)
    else:
        path = Path(source).expanduser()
        data, lines = read_json5(path)
        label, base = str(path), path.parent
    kind = expect or detect_kind(path, data)
    tr = _Translation(name=label, kind=kind, lines=lines)
    _TRANSLATORS[kind](tr, data, base)
    if tr.problems:
        raise FileProblems(tr.problems)
    return ImportedFile(kind, label, tr.data, tr.origins, tr.warnings)
