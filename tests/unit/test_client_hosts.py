"""daq_config / network_config / the observatory section → gRPC targets, and their errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from panoseti_appliance.config import ConfigError, ObservatoryConfig, read_observatory
from panoseti_appliance.daqdata.client.hosts import (
    DaqHost,
    hosts_from_observatory,
    resolve_hosts,
    target_for,
)

# Shaped like a real run directory's daq_config.json (username, bindhost, module ranges).
DAQ_CONFIG: dict[str, Any] = {
    "head_node_data_dir": "/mnt/head",
    "head_node_ip_addr": "10.0.0.1",
    "daq_nodes": [
        {"ip_addr": "10.0.0.2", "data_dir": "/mnt/a", "module_ids": "0-127", "username": "x"},
        {"ip_addr": "10.0.0.3", "data_dir": "/mnt/b", "module_ids": "128-255", "bindhost": "y"},
    ],
}
NETWORK_CONFIG: dict[str, Any] = {
    "modules": [],
    "daq_nodes": [
        {"ip_addr": "10.0.0.2", "port_forwarding": {"status": True, "gw_ip": "gw", "port": 22}},
        {"ip_addr": "10.0.0.3", "port_forwarding": {"status": False, "gw_ip": "gw2", "port": 22}},
    ],
}


def hosts_of(daq_config: Any, network_config: Any = None) -> list[DaqHost]:
    """The servers a client gets from the two original files (paths or dicts)."""
    return hosts_from_observatory(read_observatory(daq_config, network_config))


def refused(daq_config: Any, network_config: Any = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        read_observatory(daq_config, network_config)
    return info.value.problems


@pytest.mark.parametrize(
    ("host", "target"),
    [
        ("10.0.0.2", "10.0.0.2:50051"),
        ("node1", "node1:50051"),
        ("node1:6000", "node1:6000"),
        ("unix:///run/panoseti/daqdata.sock", "unix:///run/panoseti/daqdata.sock"),
        ("::1", "[::1]:50051"),
        ("[::1]:7000", "[::1]:7000"),
        ("[::1]", "[::1]:50051"),
    ],
)
def test_target_for(host: str, target: str) -> None:
    assert target_for(host) == target


def test_target_for_rejects_empty() -> None:
    with pytest.raises(ValueError, match="host is empty"):
        target_for("  ")


def test_daq_config_with_forwarding_from_files(tmp_path: Path) -> None:
    daq, net = tmp_path / "daq_config.json", tmp_path / "network_config.json"
    daq.write_text(json.dumps(DAQ_CONFIG))
    net.write_text(json.dumps(NETWORK_CONFIG))
    assert hosts_of(daq, net) == [
        DaqHost("gw:50051", "gw", Path("/mnt/a")),
        DaqHost("10.0.0.3:50051", "10.0.0.3", Path("/mnt/b")),
    ]
    assert hosts_of(str(daq), str(net)) == hosts_of(DAQ_CONFIG, NETWORK_CONFIG)


@pytest.mark.parametrize("network_config", [None, {}, ""])
def test_no_network_config_means_no_forwarding(network_config: Any) -> None:
    targets = [h.target for h in hosts_of(DAQ_CONFIG, network_config)]
    assert targets == ["10.0.0.2:50051", "10.0.0.3:50051"]


def test_same_host_key_collapses() -> None:
    config = {"daq_nodes": [{"ip_addr": "a", "data_dir": "/1"}, {"ip_addr": "a", "data_dir": "/2"}]}
    assert hosts_of(config) == [DaqHost("a:50051", "a", Path("/1"))]


def test_missing_daq_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    assert refused(missing) == [f"{missing}: file not found; check the path"]


@pytest.mark.parametrize("config", [{}, {"daq_nodes": []}])
def test_empty_daq_nodes(config: dict[str, Any]) -> None:
    assert refused(config) == [
        "daq_config: daq_nodes: daq_nodes is empty or missing; list the DAQ nodes with their ip_addr"
    ]


def test_node_without_ip_addr_is_located_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "daq_config.json"
    path.write_text('{\n  "daq_nodes": [\n    {"data_dir": "/mnt"}\n  ]\n}\n')
    assert refused(path) == [
        f"{path}:3: observatory.daq_nodes[0].ip_addr: required setting is missing; add it"
    ]


def test_relative_node_data_dir_is_refused_with_the_fix() -> None:
    (problem,) = refused({"daq_nodes": [{"ip_addr": "a", "data_dir": "panoseti"}]})
    assert problem == (
        "daq_config: observatory.daq_nodes[0].data_dir: data_dir 'panoseti' is not an absolute "
        "path; give the full path on the DAQ node, e.g. /mnt/panoseti"
    )


def test_network_config_with_empty_daq_nodes() -> None:
    (problem,) = refused(DAQ_CONFIG, {"modules": [], "daq_nodes": []})
    assert problem.startswith("network_config: daq_nodes: daq_nodes is empty or missing;")


def test_forwarding_without_gateway_is_the_one_gw_ip_rule(tmp_path: Path) -> None:
    path = tmp_path / "network_config.json"
    path.write_text(
        '{"daq_nodes": [\n  {"ip_addr": "a",\n   "port_forwarding": {"status": true}}\n]}\n'
    )
    # The same words as for the observatory section of a YAML file (test_config_models).
    assert refused(DAQ_CONFIG, path) == [
        f"{path}:3: observatory.port_forwarding.a.gw_ip: status is true but gw_ip is missing; "
        "add gw_ip"
    ]


def test_invalid_json_file(tmp_path: Path) -> None:
    bad = tmp_path / "daq_config.json"
    bad.write_text('{\n  "daq_nodes": [\n    {not json\n')
    (problem,) = refused(bad)
    assert problem.startswith(f"{bad}:3: invalid JSON5:")
    assert problem.endswith("; fix the syntax")


def test_resolve_hosts_plain_list_and_restriction() -> None:
    assert [h.target for h in resolve_hosts(hosts=["n1", "n1:50051", "unix:///s"])] == [
        "n1:50051",
        "unix:///s",
    ]
    restricted = resolve_hosts(read_observatory(DAQ_CONFIG), hosts=["10.0.0.3"])
    assert restricted == [DaqHost("10.0.0.3:50051", "10.0.0.3", Path("/mnt/b"))]
    with pytest.raises(ValueError, match="no DaqData servers given"):
        resolve_hosts()
    with pytest.raises(ValueError, match="no hosts given"):
        resolve_hosts(hosts=[])


# The appliance config's `observatory` section holding the same facts as the two files above.
OBSERVATORY: dict[str, Any] = {
    "head_node_data_dir": "/mnt/head",
    "head_node_ip_addr": "10.0.0.1",
    "daq_nodes": DAQ_CONFIG["daq_nodes"],
    "port_forwarding": {
        "10.0.0.2": {"status": True, "gw_ip": "gw", "port": 22},
        "10.0.0.3": {"status": False, "gw_ip": "gw2", "port": 22},
    },
}


def observatory_hosts(observatory: ObservatoryConfig) -> list[DaqHost]:
    """The servers a client gets from the section, passed as `panoseti daq` passes it."""
    return resolve_hosts(read_observatory(observatory))


def test_observatory_section_reads_like_the_files() -> None:
    observatory = ObservatoryConfig.model_validate(OBSERVATORY)
    assert read_observatory(DAQ_CONFIG, NETWORK_CONFIG) == observatory
    hosts = observatory_hosts(observatory)
    assert hosts == hosts_of(DAQ_CONFIG, NETWORK_CONFIG)
    assert hosts[0] == DaqHost("gw:50051", "gw", Path("/mnt/a"))


def test_observatory_section_has_its_own_forwarding() -> None:
    with pytest.raises(ConfigError, match="the observatory section has its own port_forwarding"):
        read_observatory(ObservatoryConfig.model_validate(OBSERVATORY), NETWORK_CONFIG)


def test_observatory_targets_with_ports_and_unix_sockets() -> None:
    observatory = ObservatoryConfig.model_validate(
        {
            "daq_nodes": [
                {"ip_addr": "127.0.0.1:6000", "data_dir": "/d"},
                {"ip_addr": "unix:///run/panoseti/daqdata.sock"},
                {"ip_addr": "10.0.0.9"},
            ],
            # Forwarding of a node that is not listed changes nothing.
            "port_forwarding": {"10.0.0.8": {"status": True, "gw_ip": "gw"}},
        }
    )
    assert observatory_hosts(observatory) == [
        DaqHost("127.0.0.1:6000", "127.0.0.1:6000", Path("/d")),
        DaqHost("unix:///run/panoseti/daqdata.sock", "unix:///run/panoseti/daqdata.sock"),
        DaqHost("10.0.0.9:50051", "10.0.0.9"),
    ]


def test_empty_observatory_gives_no_servers() -> None:
    with pytest.raises(ValueError, match=r"^no DaqData servers given: pass daq_config"):
        observatory_hosts(ObservatoryConfig())
