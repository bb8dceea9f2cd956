"""daq_config / network_config → gRPC targets, and their errors (docs/clients.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from panoseti_appliance.config import ObservatoryConfig
from panoseti_appliance.daqdata.client.hosts import (
    DaqHost,
    forwarded_hosts,
    hosts_from_configs,
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
    assert hosts_from_configs(daq, net) == [
        DaqHost("gw:50051", "gw", "/mnt/a"),
        DaqHost("10.0.0.3:50051", "10.0.0.3", "/mnt/b"),
    ]


@pytest.mark.parametrize("network_config", [None, {}, ""])
def test_no_network_config_means_no_forwarding(network_config: Any) -> None:
    targets = [h.target for h in hosts_from_configs(DAQ_CONFIG, network_config)]
    assert targets == ["10.0.0.2:50051", "10.0.0.3:50051"]


def test_same_host_key_collapses() -> None:
    config = {"daq_nodes": [{"ip_addr": "a", "data_dir": "/1"}, {"ip_addr": "a", "data_dir": "/2"}]}
    assert hosts_from_configs(config) == [DaqHost("a:50051", "a", "/1")]


def test_missing_daq_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match=f"daq_config_path={missing} does not exist"):
        hosts_from_configs(missing)


@pytest.mark.parametrize("config", [{}, {"daq_nodes": []}])
def test_empty_daq_nodes(config: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="daq_nodes is empty"):
        hosts_from_configs(config)


def test_node_without_ip_addr() -> None:
    with pytest.raises(ValueError, match="does not have an 'ip_addr' key"):
        hosts_from_configs({"daq_nodes": [{"data_dir": "/mnt"}]})


@pytest.mark.parametrize("value", [42, ["10.0.0.2"], 3.5])
def test_daq_config_of_wrong_type(value: Any) -> None:
    with pytest.raises(ValueError, match="daq_config must be a path or a dict"):
        hosts_from_configs(value)


def test_network_config_with_empty_daq_nodes() -> None:
    with pytest.raises(ValueError, match="daq_nodes is empty"):
        forwarded_hosts({"modules": [], "daq_nodes": []})


def test_forwarding_without_gateway_names_the_fix() -> None:
    config = {"daq_nodes": [{"ip_addr": "a", "port_forwarding": {"status": True}}]}
    with pytest.raises(ValueError, match="no 'gw_ip'"):
        forwarded_hosts(config)


def test_invalid_json_file(tmp_path: Path) -> None:
    bad = tmp_path / "daq_config.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        hosts_from_configs(bad)


def test_resolve_hosts_plain_list_and_restriction() -> None:
    assert [h.target for h in resolve_hosts(hosts=["n1", "n1:50051", "unix:///s"])] == [
        "n1:50051",
        "unix:///s",
    ]
    restricted = resolve_hosts(DAQ_CONFIG, None, hosts=["10.0.0.3"])
    assert restricted == [DaqHost("10.0.0.3:50051", "10.0.0.3", "/mnt/b")]
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
    return resolve_hosts(observatory.as_daq_config(), observatory.as_network_config())


def test_observatory_section_reads_like_the_files() -> None:
    observatory = ObservatoryConfig.model_validate(OBSERVATORY)
    hosts = observatory_hosts(observatory)
    assert hosts == hosts_from_configs(DAQ_CONFIG, NETWORK_CONFIG)
    assert hosts[0] == DaqHost("gw:50051", "gw", "/mnt/a")


def test_observatory_renders_the_original_shapes() -> None:
    observatory = ObservatoryConfig.model_validate(OBSERVATORY)
    daq = observatory.as_daq_config()
    assert daq["head_node_ip_addr"] == "10.0.0.1"
    assert daq["daq_nodes"][0] == {
        "ip_addr": "10.0.0.2",
        "data_dir": "/mnt/a",
        "module_ids": "0-127",
        "username": "x",
    }
    network = observatory.as_network_config()
    assert network is not None
    assert network["daq_nodes"][0] == {
        "ip_addr": "10.0.0.2",
        "port_forwarding": {"status": True, "gw_ip": "gw", "port": 22},
    }
    assert (
        ObservatoryConfig.model_validate({"daq_nodes": [{"ip_addr": "a"}]}).as_network_config()
        is None
    )


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
        DaqHost("127.0.0.1:6000", "127.0.0.1:6000", "/d"),
        DaqHost("unix:///run/panoseti/daqdata.sock", "unix:///run/panoseti/daqdata.sock"),
        DaqHost("10.0.0.9:50051", "10.0.0.9"),
    ]


def test_empty_observatory_is_refused_like_an_empty_file() -> None:
    with pytest.raises(ValueError, match=r"^daq_nodes is empty: daq_config must list at least one"):
        observatory_hosts(ObservatoryConfig())
