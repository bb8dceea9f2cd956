"""Which DaqData servers a client talks to (docs/clients.md, "Which servers").

Observatory run directories carry `daq_config.json` (the DAQ nodes and their data dirs) and
optionally `network_config.json` (port forwarding through a gateway); the appliance
configuration's `observatory` section holds the same facts. All three arrive here as one typed
`ObservatoryConfig` (`config.read_observatory` reads and checks the files), and this module turns
it, or a plain list of host names, into gRPC targets for both client classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from panoseti_appliance.config.models import ObservatoryConfig

#: The port DaqData listens on; every original client hard-codes it.
DEFAULT_PORT = 50051


@dataclass(frozen=True, slots=True)
class DaqHost:
    """One DaqData server: its gRPC target, the host key it came from and its data dir."""

    target: str
    host_key: str
    data_dir: Path | None = None


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


def hosts_from_observatory(observatory: ObservatoryConfig) -> list[DaqHost]:
    """The servers of the DAQ nodes, a forwarded node (port_forwarding.status) at its gw_ip.

    Nodes that map to the same target collapse into one (the first one's data dir wins).
    """
    hosts: dict[str, DaqHost] = {}
    for node in observatory.daq_nodes:
        forwarding = observatory.port_forwarding.get(node.ip_addr)
        host_key = (forwarding and forwarding.gateway()) or node.ip_addr
        target = target_for(host_key)
        hosts.setdefault(target, DaqHost(target, host_key, node.data_dir))
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
    observatory: ObservatoryConfig | None = None, hosts: Iterable[str] | None = None
) -> list[DaqHost]:
    """Explicit `hosts` if given (restricted to them), else every node of `observatory`.

    When both are given, a named host that is one of the nodes keeps its data dir.
    """
    if hosts is not None:
        named = hosts_from_names(hosts)
        if observatory is None:
            return named
        known = {h.target: h for h in hosts_from_observatory(observatory)}
        return [known.get(h.target, h) for h in named]
    found = hosts_from_observatory(observatory) if observatory is not None else []
    if not found:
        raise ValueError(
            "no DaqData servers given: pass daq_config (path or dict) with at least one DAQ "
            "node, or hosts (e.g. ['localhost', 'unix:///run/panoseti/daqdata.sock'])"
        )
    return found
