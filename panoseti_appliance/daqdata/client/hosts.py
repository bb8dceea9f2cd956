"""Which DaqData servers a client talks to (docs/clients.md, "Which servers").

Observatory run directories carry `daq_config.json` (the DAQ nodes and their data dirs) and
optionally `network_config.json` (port forwarding through a gateway). This module turns them, or a
plain list of host names, into gRPC targets, so both client classes share one reading of them.
The appliance configuration's `observatory` section holds the same lists; it renders itself in
those two shapes (`as_daq_config`, `as_network_config`) and is read here by the same code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The port DaqData listens on; every original client hard-codes it.
DEFAULT_PORT = 50051

ConfigInput = str | os.PathLike[str] | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DaqHost:
    """One DaqData server: its gRPC target, the host key it came from and its data dir."""

    target: str
    host_key: str
    data_dir: str = ""


def target_for(host: str) -> str:
    """The gRPC target of a host key: `unix:` as is, `host:port` as is, else `<host>:50051`.

    Bare IPv6 addresses get brackets. An explicit port is an addition to the original (which
    always used 50051) so a single server on another port can be reached with `--host`.
    """
    host = host.strip()
    if not host:
        raise ValueError("host is empty: give a host name, 'host:port' or 'unix:///path'")
    if host.startswith("unix:"):
        return host
    if host.startswith("["):
        return host if "]:" in host else f"{host}:{DEFAULT_PORT}"
    colons = host.count(":")
    if colons == 1:
        return host
    if colons > 1:
        return f"[{host}]:{DEFAULT_PORT}"
    return f"{host}:{DEFAULT_PORT}"


def _load_json(value: ConfigInput, name: str) -> Mapping[str, Any]:
    """A config given as a dict, or the JSON object in the file at a path."""
    if isinstance(value, Mapping):
        return value
    if not isinstance(value, str | os.PathLike):
        raise ValueError(
            f"{name} must be a path or a dict, not {type(value).__name__}: "
            f"pass the path of {name}.json or its parsed contents"
        )
    path = Path(value).expanduser().absolute()
    if not path.is_file():
        raise FileNotFoundError(f"{name}_path={path} does not exist")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{name}_path={path} is not valid JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ValueError(f"{name}_path={path} must hold a JSON object, not {type(data).__name__}")
    return data


def _node_list(config: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    nodes = config.get("daq_nodes")
    if not nodes:
        raise ValueError(f"daq_nodes is empty: {name} must list at least one DAQ node")
    if not isinstance(nodes, list) or not all(isinstance(n, Mapping) for n in nodes):
        raise ValueError(f"daq_nodes in {name} must be a list of objects, got {nodes!r}")
    return nodes


def forwarded_hosts(network_config: ConfigInput | None) -> dict[str, str]:
    """`{ip_addr: gw_ip}` for every network_config node whose port forwarding is on."""
    if network_config is None or (isinstance(network_config, Mapping | str) and not network_config):
        return {}
    config = _load_json(network_config, "network_config")
    out: dict[str, str] = {}
    for node in _node_list(config, "network_config"):
        forwarding = node.get("port_forwarding") or {}
        if isinstance(forwarding, Mapping) and forwarding.get("status") is True:
            gw_ip = forwarding.get("gw_ip")
            if not gw_ip:
                raise ValueError(
                    f"network_config node {node.get('ip_addr')!r} has port_forwarding.status "
                    "true but no 'gw_ip': add the gateway address or set status to false"
                )
            out[str(node.get("ip_addr"))] = str(gw_ip)
    return out


def hosts_from_configs(
    daq_config: ConfigInput, network_config: ConfigInput | None = None
) -> list[DaqHost]:
    """The servers of a daq_config, with gateway forwarding from an optional network_config.

    Nodes that map to the same target collapse into one (the first one's data dir wins).
    """
    config = _load_json(daq_config, "daq_config")
    forwarding = forwarded_hosts(network_config)
    hosts: dict[str, DaqHost] = {}
    for node in _node_list(config, "daq_config"):
        if "ip_addr" not in node:
            raise ValueError(f"daq_config node {dict(node)!r} does not have an 'ip_addr' key")
        ip_addr = str(node["ip_addr"])
        host_key = forwarding.get(ip_addr, ip_addr)
        target = target_for(host_key)
        hosts.setdefault(target, DaqHost(target, host_key, str(node.get("data_dir") or "")))
    return list(hosts.values())


def hosts_from_names(names: Iterable[str]) -> list[DaqHost]:
    """Servers given directly as host keys or targets (no data dir known)."""
    hosts: dict[str, DaqHost] = {}
    for name in names:
        target = target_for(name)
        hosts.setdefault(target, DaqHost(target, name.strip()))
    if not hosts:
        raise ValueError("no hosts given: pass at least one host or a daq_config")
    return list(hosts.values())


def resolve_hosts(
    daq_config: ConfigInput | None = None,
    network_config: ConfigInput | None = None,
    hosts: Iterable[str] | None = None,
) -> list[DaqHost]:
    """Explicit `hosts` if given (restricted to them), else every node of `daq_config`.

    When both are given, a named host that is in the daq_config keeps its data dir.
    """
    if hosts is not None:
        named = hosts_from_names(hosts)
        if daq_config is None:
            return named
        known = {h.target: h for h in hosts_from_configs(daq_config, network_config)}
        return [known.get(h.target, h) for h in named]
    if daq_config is None:
        raise ValueError(
            "no DaqData servers given: pass daq_config (path or dict) or hosts "
            "(e.g. ['localhost', 'unix:///run/panoseti/daqdata.sock'])"
        )
    return hosts_from_configs(daq_config, network_config)
