"""The config models: defaults kept, bounds and cross-field rules enforced with helpful messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from panoseti_appliance.config import (
    ApplianceConfig,
    ConfigError,
    DaqDataConfig,
    UbloxConfig,
    load_config,
)
from panoseti_appliance.config.checks import (
    check_listen_address,
    format_module_range,
    parse_module_range,
)
from panoseti_appliance.config.models import CfgKeySetting
from tests.unit.test_client_hosts import observatory_hosts


def write(tmp_path: Path, text: str, name: str = "panoseti.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    return info.value.problems


def test_empty_file_gives_the_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), environ={})
    assert config.daqdata.listen == ["127.0.0.1:50051", "unix:///run/panoseti/daqdata.sock"]
    assert config.daqdata.max_concurrent_rpcs == 100
    assert config.daqdata.hashpipe.socket_template == "/tmp/hashpipe_grpc.dp_{dp}.sock"
    assert config.daqdata.hashpipe.data_products == ["img8", "img16", "ph256", "ph1024"]
    assert config.daqdata.init_from_default is True
    assert config.hp_io.simulate_daq is False
    assert config.ublox.listen == ["127.0.0.1:50052", "unix:///run/panoseti/ublox.sock"]
    assert config.ublox.apply_to_layers == ["RAM"]
    assert config == ApplianceConfig()


def test_direct_construction_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANOSETI_DAQDATA__MAX_CONCURRENT_RPCS", "7")
    assert ApplianceConfig().daqdata.max_concurrent_rpcs == 100


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        (
            "daqdata:\n  max_concurrent_rpcs: 0\n",
            ":2: daqdata.max_concurrent_rpcs:",
            "greater than or equal to 1",
        ),
        ("daqdata:\n  max_concurrent_rpcs: many\n", ":2: daqdata.max_concurrent_rpcs:", "integer"),
        ("daqdata:\n  listen: ['0.0.0.0:70000']\n", ":2: daqdata.listen:", "1..65535"),
        (
            "ublox:\n  position: {lat_deg: 91, lon_deg: 0, height_m: 0}\n",
            ":2: ublox.position.lat_deg:",
            "90",
        ),
        ("hp_io:\n  module_ids: [70000]\n", ":2: hp_io.module_ids[0]:", "65535"),
        ("ublox:\n  apply_to_layers: [ROM]\n", ":2: ublox.apply_to_layers[0]:", "RAM"),
        ("ublox:\n  baud: 12345\n", ":2: ublox.baud:", "115200"),
        ("logging:\n  level: loud\n", ":2: logging.level:", "debug"),
        (
            "daqdata:\n  hashpipe:\n    socket_template: /tmp/x.sock\n",
            ":3: daqdata.hashpipe.socket_template:",
            "must contain {dp}",
        ),
        (
            "daqdata:\n  hashpipe:\n    socket_template: hp.{dp}.sock\n",
            ":3: daqdata.hashpipe.socket_template:",
            "socket_template 'hp.{dp}.sock' is not an absolute path; give the full path on the "
            "DAQ node, e.g. /tmp/hashpipe_grpc.dp_{dp}.sock",
        ),
        (
            "hp_io:\n  data_dir: data\n",
            ":2: hp_io.data_dir:",
            "data_dir 'data' is not an absolute path; give the full path on the DAQ node, "
            "e.g. /mnt/panoseti (or set simulate_daq: true)",
        ),
        (
            "observatory:\n  head_node_data_dir: panoseti\n",
            ":2: observatory.head_node_data_dir:",
            "head_node_data_dir 'panoseti' is not an absolute path",
        ),
        (
            "daqdata:\n  simulator:\n    sim_run_dir_template: /abs/{module_id}\n",
            ":3: daqdata.simulator.sim_run_dir_template:",
            "relative",
        ),
        (
            "daqdata:\n  shutdown_grace_period: .nan\n",
            ":2: daqdata.shutdown_grace_period:",
            "finite",
        ),
        (
            "daqdata:\n  hp_io_restart_backoff_seconds: []\n",
            ":2: daqdata.hp_io_restart_backoff_seconds:",
            "at least 1 item",
        ),
        (
            "daqdata:\n  hp_io_restart_backoff_seconds: [1, 0]\n",
            ":2: daqdata.hp_io_restart_backoff_seconds[1]:",
            "greater than 0",
        ),
        (
            "daqdata:\n  listen: ['systemd:']\n",
            ":2: daqdata.listen:",
            "FileDescriptorName=",
        ),
        (
            "daqdata:\n  hashpipe:\n    data_products: [img8]\nhp_io:\n  simulate_daq: true\n",
            ":3: daqdata.hashpipe.data_products:",
            "uds simulator feeds ph256, img16",
        ),
        (
            "daqdata:\n  min_hp_io_update_interval_seconds: 0.5\n"
            "hp_io:\n  update_interval_seconds: 0.1\n",
            ":4: hp_io.update_interval_seconds:",
            "raise it to at least 0.5",
        ),
        (
            "ublox:\n  position: {lat_deg: 1, lon_deg: 2, height_m: 3}\n"
            "  cfg_key_settings:\n    - {key: cfg-tmode-mode, value: 2}\n",
            ":4: ublox.cfg_key_settings[0].key:",
            "CFG_TMODE_MODE conflicts with position",
        ),
    ],
)
def test_bad_values_name_file_line_key_and_bound(
    tmp_path: Path, text: str, where: str, fragment: str
) -> None:
    found = problems(tmp_path, text)
    assert len(found) == 1, found
    assert found[0].startswith(str(tmp_path / "panoseti.yaml") + where), found
    assert fragment in found[0]


def test_unknown_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    found = problems(tmp_path, "daqdata:\n  max_concurent_rpcs: 7\n")
    assert found == [
        f"{tmp_path / 'panoseti.yaml'}:2: daqdata.max_concurent_rpcs: unknown key; remove it "
        "(did you mean 'max_concurrent_rpcs'?)"
    ]


def test_unknown_section_lists_the_known_ones(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, "daqdta: {}\n")
    assert ":1: daqdta: unknown key" in found
    assert "daqdata" in found


def test_simulation_mode_needs_its_source_only_when_simulating(tmp_path: Path) -> None:
    text = "daqdata:\n  hashpipe:\n    enabled: false\n"
    assert load_config(write(tmp_path, text), environ={}).daqdata.hashpipe.enabled is False
    (found,) = problems(tmp_path, text + "hp_io:\n  simulate_daq: true\n")
    assert found.startswith(f"{tmp_path / 'panoseti.yaml'}:3: daqdata.hashpipe.enabled:")
    assert "simulator mode uds needs daqdata.hashpipe.enabled: true" in found


@pytest.mark.parametrize("mode", ["filesystem_poll", "filesystem_pipe"])
def test_filesystem_simulation_needs_that_source(tmp_path: Path, mode: str) -> None:
    text = f"daqdata:\n  simulator:\n    mode: {mode}\nhp_io:\n  simulate_daq: true\n"
    (found,) = problems(tmp_path, text)
    assert (
        f":3: daqdata.simulator.mode: simulator mode {mode} needs daqdata.{mode}.enabled" in found
    )
    enabled = text.replace("daqdata:\n", f"daqdata:\n  {mode}:\n    enabled: true\n")
    assert load_config(write(tmp_path, enabled), environ={}).daqdata.simulator.mode == mode


def test_rpc_simulation_needs_a_unix_listener(tmp_path: Path) -> None:
    text = (
        "daqdata:\n  listen: ['127.0.0.1:6000']\n  simulator:\n    mode: rpc\n"
        "hp_io:\n  simulate_daq: true\n"
    )
    (found,) = problems(tmp_path, text)
    assert ":4: daqdata.simulator.mode:" in found
    assert "unix://" in found
    with_target = text.replace("mode: rpc", "mode: rpc\n    rpc_target: unix:///tmp/x.sock")
    assert load_config(write(tmp_path, with_target), environ={}).daqdata.simulator.rpc_target


def test_layers_are_case_insensitive_and_verify_layer_must_be_written(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "ublox:\n  apply_to_layers: [ram, bbr]\n  verify_layer: bbr\n"), environ={}
    )
    assert config.ublox.apply_to_layers == ["RAM", "BBR"]
    assert config.ublox.verify_layer == "BBR"
    (found,) = problems(tmp_path, "ublox:\n  apply_to_layers: [RAM, BBR]\n  verify_layer: FLASH\n")
    assert ":3: ublox.verify_layer: verify_layer FLASH is not one of the layers written" in found


def test_chip_rules(tmp_path: Path) -> None:
    (bad_uid,) = problems(tmp_path, "ublox:\n  chips:\n    - {uid: DF03A241, device: /dev/x}\n")
    assert ":3: ublox.chips[0].uid:" in bad_uid
    assert "10 hex digits" in bad_uid
    (missing,) = problems(tmp_path, "ublox:\n  chips:\n    - {device: /dev/x}\n")
    assert ":3: ublox.chips[0].uid: required setting is missing" in missing
    (unknown,) = problems(
        tmp_path, "ublox:\n  chip_uid: AAAAAAAAAA\n  chips:\n    - {uid: df03a241bc}\n"
    )
    assert ":2: ublox.chip_uid: no chip has uid AAAAAAAAAA; the chips are: DF03A241BC" in unknown
    (number,) = problems(tmp_path, "ublox:\n  chips:\n    - {uid: 0102030405}\n")
    assert ":3: ublox.chips[0].uid: 17314053 was read as a number, not a UID" in number
    assert "quoted in YAML" in number
    (no_chip,) = problems(tmp_path, "ublox:\n  init_on_start: true\n")
    assert ":2: ublox.init_on_start:" in no_chip
    assert "add one to chips" in no_chip
    config = load_config(write(tmp_path, "ublox:\n  chips:\n    - {uid: df03a241bc}\n"), environ={})
    assert config.ublox.chips[0].uid == "DF03A241BC"
    assert config.ublox.selected_chip() == config.ublox.chips[0]


def test_position_must_match_its_format(tmp_path: Path) -> None:
    (missing,) = problems(tmp_path, "ublox:\n  position: {format: LLH, lat_deg: 1, height_m: 2}\n")
    assert "ublox.position.lon_deg: required for format LLH; add it" in missing
    (mixed,) = problems(
        tmp_path, "ublox:\n  position: {format: ecef, x_m: 1, y_m: 2, z_m: 3, lat_deg: 4}\n"
    )
    assert "ublox.position.lat_deg: does not belong to format ECEF" in mixed


def test_f9t_config_applies_the_chip_merge_rule(tmp_path: Path) -> None:
    text = (
        "ublox:\n  device: /dev/general\n  apply_to_layers: [RAM, BBR]\n"
        "  position: {lat_deg: 1, lon_deg: 2, height_m: 3}\n"
        "  cfg_key_settings: [{key: CFG_TP_FREQ_TP1, value: 1}]\n"
        "  chips:\n    - {uid: DF03A241BC}\n"
        "    - {uid: '0102030405', device: /dev/other, verify_layer: BBR,\n"
        "       cfg_key_settings: [{key: CFG-TP-FREQ_TP2, value: 10}]}\n"
    )
    ublox = load_config(write(tmp_path, text), environ={}).ublox
    first = ublox.f9t_config(ublox.chips[0])
    assert first == {
        "device": "/dev/general",
        "f9t_uid": "DF03A241BC",
        "baud": 115200,
        "apply_to_layers": ["RAM", "BBR"],
        "verify_layer": "RAM",
        "cfg_key_settings": [{"key": "CFG_TP_FREQ_TP1", "value": 1}],
        "position": {
            "format": "LLH",
            "lat_deg": 1.0,
            "lon_deg": 2.0,
            "height_m": 3.0,
            "acc_m": 0.05,
        },
    }
    second = ublox.f9t_config(ublox.chips[1])
    assert second["device"] == "/dev/other"
    assert second["verify_layer"] == "BBR"
    assert second["cfg_key_settings"] == [{"key": "CFG_TP_FREQ_TP2", "value": 10}]


@pytest.mark.parametrize(
    "address",
    [
        "0.0.0.0:50051",
        "[::]:50051",
        "localhost:1",
        "unix:///run/x.sock",
        "unix:relative.sock",
        "systemd:grpc",
    ],
)
def test_good_listen_addresses(address: str) -> None:
    assert check_listen_address(address) == address


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("50051", "HOST:PORT"),
        ("host:0", "out of range"),
        ("host:http", "not a number"),
        ("[zz]:1", "not an IPv6"),
        ("unix://", "socket path"),
        ("bad host:1", "not a host name"),
        ("systemd:", "FileDescriptorName= of a socket unit"),
        ("systemd:a:b", "FileDescriptorName= of a socket unit"),
    ],
)
def test_bad_listen_addresses(address: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        check_listen_address(address)


def test_module_ranges_round_trip() -> None:
    assert parse_module_range("0-3, 7,9-10") == [0, 1, 2, 3, 7, 9, 10]
    assert format_module_range([10, 9, 7, 3, 2, 1, 0]) == "0-3,7,9-10"
    with pytest.raises(ValueError, match="reversed"):
        parse_module_range("5-1")
    with pytest.raises(ValueError, match="N or N-M"):
        parse_module_range("a-b")


def test_cfg_keys_are_stored_by_their_database_name() -> None:
    assert CfgKeySetting(key=" cfg-tp-ant_cabledelay ", value=1).key == "CFG_TP_ANT_CABLEDELAY"
    assert CfgKeySetting(key="0X40050024", value=1).key == "CFG_TP_FREQ_TP1"
    with pytest.raises(ValueError, match="Undefined configuration database key TP_FREQ"):
        CfgKeySetting(key="TP_FREQ", value=1)


def test_observatory_host_keys_follow_port_forwarding(tmp_path: Path) -> None:
    text = (
        "observatory:\n  daq_nodes:\n    - {ip_addr: 10.0.0.1, module_ids: [0, 1, 2]}\n"
        "    - {ip_addr: 10.0.0.2}\n    - {ip_addr: 10.0.0.3}\n"
        "  port_forwarding:\n    10.0.0.1: {status: true, gw_ip: gw.example.org}\n"
        "    10.0.0.3: {status: true, gw_ip: gw.example.org}\n"
    )
    observatory = load_config(write(tmp_path, text), environ={}).observatory
    assert [h.host_key for h in observatory_hosts(observatory)] == [
        "gw.example.org",
        "10.0.0.2",
    ]
    assert observatory.daq_nodes[0].module_ids == "0-2"
    (found,) = problems(
        tmp_path, "observatory:\n  port_forwarding:\n    10.0.0.1: {status: true}\n"
    )
    assert ":3: observatory.port_forwarding.10.0.0.1.gw_ip:" in found


def test_daq_node_address_is_trimmed_and_never_blank(tmp_path: Path) -> None:
    text = "observatory:\n  daq_nodes:\n    - {ip_addr: ' 127.0.0.1:6000 '}\n"
    observatory = load_config(write(tmp_path, text), environ={}).observatory
    assert observatory.daq_nodes[0].ip_addr == "127.0.0.1:6000"
    (found,) = problems(tmp_path, "observatory:\n  daq_nodes:\n    - {ip_addr: ' '}\n")
    assert found.endswith(
        ":3: observatory.daq_nodes[0].ip_addr: ip_addr is empty; write the node's host name or "
        "IP, host:port, or unix:///path"
    )


def test_data_dir_is_a_path_and_only_used_when_not_simulating(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "hp_io:\n  data_dir: /mnt/data10\n"), environ={})
    assert config.hp_io.data_dir == Path("/mnt/data10")
    simulating = "hp_io:\n  data_dir: simulated_data_dir\n  simulate_daq: true\n"
    assert load_config(write(tmp_path, simulating), environ={}).hp_io.data_dir == Path(
        "simulated_data_dir"
    )


def test_a_filesystem_source_reading_the_simulator_dir_needs_it_absolute(tmp_path: Path) -> None:
    text = (
        "daqdata:\n  filesystem_poll: {enabled: true}\n  simulator:\n"
        "    mode: filesystem_poll\n    sim_data_dir: sim\nhp_io:\n  simulate_daq: true\n"
    )
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'panoseti.yaml'}:5: daqdata.simulator.sim_data_dir: sim_data_dir 'sim' is "
        "not an absolute path; give the full path on the DAQ node, e.g. /tmp/panoseti-sim (or "
        "set hp_io.simulate_daq: false)"
    ]
    # No source reads it in uds mode (the original daq_data_server_config.json's case).
    uds = "daqdata:\n  simulator:\n    sim_data_dir: sim\nhp_io:\n  simulate_daq: true\n"
    assert load_config(write(tmp_path, uds), environ={}).daqdata.simulator.sim_data_dir == Path(
        "sim"
    )


def test_chip_lookup_is_the_one_rule() -> None:
    ublox = UbloxConfig.model_validate({"chips": [{"uid": "df03a241bc", "device": "/dev/x"}]})
    assert ublox.chip("DF03A241BC") is ublox.chips[0]
    with pytest.raises(
        ValueError, match=r"^no chip has uid AAAAAAAAAA; the chips are: DF03A241BC$"
    ):
        ublox.chip("AAAAAAAAAA")


def test_simulation_problem_is_available_for_run_time_checks() -> None:
    daq = DaqDataConfig()
    assert daq.simulation_problem() is None
    daq.hashpipe.enabled = False
    problem = daq.simulation_problem()
    assert problem is not None
    assert problem.paths == ("hashpipe.enabled", "simulator.mode")
    assert str(problem).startswith("simulator mode uds needs daqdata.hashpipe.enabled: true")
    daq.simulator.mode = "rpc"
    daq.listen = ["127.0.0.1:6000"]
    assert "unix://" in str(daq.simulation_problem())
    daq.simulator.rpc_target = "unix:///tmp/other.sock"
    assert daq.simulation_problem() is None
