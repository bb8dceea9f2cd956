"""The original panoseti_grpc JSON/JSON5 files load into the same models, with located problems."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from panoseti_appliance.cli.config import imported_yaml
from panoseti_appliance.config import (
    ConfigError,
    load_config,
    load_config_details,
    read_f9t_config,
    read_observatory,
)
from panoseti_appliance.config.files import FileProblems
from panoseti_appliance.config.originals import detect_kind, import_original
from tests.unit.test_client_hosts import hosts_of, observatory_hosts

ORIGINALS = Path(__file__).resolve().parents[1] / "data" / "original_configs"


def original(name: str) -> Path:
    return ORIGINALS / name


def test_daq_data_server_config_and_its_hp_io_file() -> None:
    loaded = load_config_details(original("daq_data_server_config.json"), environ={})
    daq = loaded.config.daqdata
    assert daq.listen == ["0.0.0.0:50051", "unix:///tmp/daq_data.sock"]
    assert daq.init_from_default is False
    assert daq.max_concurrent_rpcs == 100
    assert daq.min_hp_io_update_interval_seconds == 0.001
    assert daq.hp_io_stop_timeout == 5.0
    assert daq.filesystem_pipe.pipe_name == "read_status_2"
    assert daq.filesystem_poll.enabled is False
    assert daq.hashpipe.socket_template == "/tmp/hashpipe_grpc.dp_{dp}.sock"
    assert daq.hashpipe.read_timeout_seconds == 600.0
    sim = daq.simulator
    assert (sim.mode, sim.module_ids, sim.movie_type, sim.ph_type) == (
        "uds",
        [224],
        "img16",
        "ph256",
    )
    assert sim.uds_data_products == ["ph256", "img16"]
    assert sim.sim_run_dir_template == "module_{module_id}/obs_SIMULATE"
    assert sim.frames_per_pff == 100
    assert sim.frame_limit == -1
    assert str(sim.sim_data_dir) == "daq_data/simulated_data_dir"
    # default_hp_io_config_file is read from beside the server config
    assert loaded.config.hp_io.simulate_daq is True
    # relative, as the original wrote it: accepted since simulate_daq ignores it
    assert loaded.config.hp_io.data_dir == Path("simulated_data_dir")
    assert (
        loaded.source_of(("hp_io", "simulate_daq")) == f"{original('hp_io_config_simulate.json')}:5"
    )
    assert loaded.source_of(("daqdata", "max_concurrent_rpcs")) == (
        f"{original('daq_data_server_config.json')}:5"
    )


def test_dead_keys_are_accepted_with_located_deprecation_warnings() -> None:
    loaded = load_config_details(original("daq_data_server_config.json"), environ={})
    name = original("daq_data_server_config.json")
    deprecated = [w for w in loaded.warnings if "deprecated" in w]
    assert [w.split(": ")[0:2] for w in deprecated] == [
        [f"{name}:6", "max_read_queue_size"],
        [f"{name}:9", "max_reader_enqueue_timeouts"],
        [f"{name}:10", "max_reader_dequeue_timeouts"],
        [f"{name}:11", "reader_timeout"],
        [f"{name}:15", "valid_data_products"],
        [f"{name}:40", "simulate_daq_cfg.source_data.real_module_id"],
    ]
    server = load_config_details(original("ublox_control_server_config.json"), environ={})
    assert server.config.ublox.max_read_queue_size == 200
    assert server.config.ublox.shutdown_grace_period == 0.5
    assert any(": max_workers: deprecated" in w for w in server.warnings)


def test_f9t_config_json5_with_comments_and_trailing_commas() -> None:
    loaded = load_config_details(original("f9t_config.json5"), environ={})
    ublox = loaded.config.ublox
    assert ublox.apply_to_layers == ["RAM", "BBR"]
    assert len(ublox.cfg_key_settings) == 40
    assert ublox.cfg_key_settings[21].key == "CFG_TP_ANT_CABLEDELAY"
    (chip,) = ublox.chips
    assert chip.uid == "DF03A241BC"
    flat = ublox.f9t_config(chip)
    assert flat["device"] == "/dev/ttyACM1"
    assert flat["position"] == {
        "format": "LLH",
        "lat_deg": 37.4219999,
        "lon_deg": -122.0840575,
        "height_m": 12.345,
        "acc_m": 0.02,
    }
    assert flat["verify_layer"] == "RAM"
    ignored = sorted(w.split(": ")[1] for w in loaded.warnings)
    assert ignored == ["f9t_chips[0].host", "f9t_chips[0].port", "register_csv"]


def test_daq_and_network_config() -> None:
    daq = load_config(original("daq_config.json"), environ={}).observatory
    assert daq.head_node_ip_addr == "10.0.0.3"
    assert [n.ip_addr for n in daq.daq_nodes] == ["10.0.0.60", "10.0.0.61"]
    assert daq.daq_nodes[1].username == "panosetigraph"  # from the user_name spelling
    assert daq.daq_nodes[1].module_id_list() == list(range(128, 256))
    net = load_config(original("network_config.json"), environ={}).observatory
    assert net.port_forwarding["10.0.0.60"].gw_ip == "128.114.23.81"
    text, _ = imported_yaml([original("daq_config.json"), original("network_config.json")])
    both = yaml.safe_load(text)["observatory"]
    assert both["port_forwarding"]["10.0.0.60"]["status"] is True
    assert len(both["daq_nodes"]) == 2


def test_all_originals_round_trip_through_import(tmp_path: Path) -> None:
    files = [
        original(name)
        for name in (
            "daq_data_server_config.json",
            "f9t_config.json5",
            "daq_config.json",
            "network_config.json",
            "ublox_control_server_config.json",
        )
    ]
    text, warnings = imported_yaml(files)
    assert text.startswith("# Imported by `panoseti config import` from:")
    assert len(warnings) == 11
    assert any(": modules: used by other PANOSETI tools" in w for w in warnings)
    converted = tmp_path / "panoseti.yaml"
    converted.write_text(text)
    from_yaml = load_config(converted, environ={})
    server, f9t, daq, network, ublox_server = (load_config(p, environ={}) for p in files)
    assert from_yaml.daqdata == server.daqdata
    assert from_yaml.hp_io == server.hp_io
    assert from_yaml.ublox.model_dump(exclude={"max_read_queue_size", "shutdown_grace_period"}) == (
        f9t.ublox.model_dump(exclude={"max_read_queue_size", "shutdown_grace_period"})
    )
    assert from_yaml.ublox.max_read_queue_size == ublox_server.ublox.max_read_queue_size == 200
    assert from_yaml.ublox.shutdown_grace_period == ublox_server.ublox.shutdown_grace_period
    assert from_yaml.observatory.daq_nodes == daq.observatory.daq_nodes
    assert from_yaml.observatory.port_forwarding == network.observatory.port_forwarding
    hosts = observatory_hosts(from_yaml.observatory)
    assert [h.host_key for h in hosts] == ["128.114.23.81", "10.0.0.61"]
    assert hosts == hosts_of(original("daq_config.json"), original("network_config.json"))


def test_missing_hp_io_file_is_a_located_warning(tmp_path: Path) -> None:
    copy = tmp_path / "daq_data_server_config.json"
    shutil.copy(original("daq_data_server_config.json"), copy)
    loaded = load_config_details(copy, environ={})
    assert loaded.config.hp_io.simulate_daq is False
    assert any(
        w.startswith(f"{copy}:3: default_hp_io_config_file: ") and "not found" in w
        for w in loaded.warnings
    )


def test_chip_without_uid_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "f9t_config.json5"
    path.write_text(
        '{\n  baud: 115200,\n  f9t_chips: [\n    {\n      device: "/dev/ttyACM0",\n    },\n  ],\n}\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:5: f9t_chips[0]: chip has no f9t_uid;")
    assert "10-hex-digit" in problem


def test_bad_uid_in_json5_is_located(tmp_path: Path) -> None:
    path = tmp_path / "f9t_config.json5"
    path.write_text('{\n  f9t_chips: [\n    {f9t_uid: "XYZ", device: "/dev/x"},\n  ],\n}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problems[0].startswith(f"{path}:3: ublox.chips[0].uid: 'XYZ' is not a UID;")


def test_malformed_json5_gives_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "hp_io_config.json"
    path.write_text('{\n  "data_dir": "/x",\n  "update_interval_seconds": ,\n}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:3: invalid JSON5:")


def test_wrong_value_in_original_points_into_it(tmp_path: Path) -> None:
    path = tmp_path / "hp_io_config.json"
    path.write_text('{\n  "data_dir": "/x",\n  "update_interval_seconds": -1\n}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problems == [
        f"{path}:3: hp_io.update_interval_seconds: Input should be greater than 0 (got -1)"
    ]


def test_unknown_original_key_is_a_located_warning(tmp_path: Path) -> None:
    path = tmp_path / "daq_config.json"
    path.write_text('{\n  "daq_nodes": [{"ip_addr": "a"}],\n  "head_node": "h"\n}\n')
    loaded = load_config_details(path, environ={})
    assert loaded.warnings == [
        f"{path}:3: head_node: unknown key in a daq_config file; ignored (check its spelling)"
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(
            '{\n  "data_dir": "/x",\n  "update_interval_seconds": 1,\n  "update_intervall": 1\n}\n',
            "4: hp_io.update_intervall: unknown key; remove it "
            "(did you mean 'update_interval_seconds'?)",
            id="unknown-key-like-its-section",
        ),
        pytest.param(
            '{\n  "data_dir": "/x"\n}\n',
            "1: update_interval_seconds: required in an hp_io config; add it, e.g. "
            '"update_interval_seconds": 0.1 (seconds)',
            id="interval-required",
        ),
        pytest.param(
            '{\n  "data_dir": "run/data",\n  "update_interval_seconds": 1\n}\n',
            "2: hp_io.data_dir: data_dir 'run/data' is not an absolute path; give the full "
            "path on the DAQ node, e.g. /mnt/panoseti (or set simulate_daq: true)",
            id="relative-data-dir",
        ),
    ],
)
def test_an_hp_io_file_problem_names_line_field_and_fix(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "hp_io_config.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problems == [f"{path}:{problem}"]


def test_typed_importers_give_what_the_loader_gives() -> None:
    """A client reading an original file gets the section a daemon loading it gets."""
    for read, name, section in (
        (read_f9t_config, "f9t_config.json5", "ublox"),
        (read_observatory, "daq_config.json", "observatory"),
    ):
        typed = read(original(name))
        assert typed == getattr(load_config(original(name), environ={}), section)


def test_unrecognisable_original_file(tmp_path: Path) -> None:
    path = tmp_path / "mystery.json"
    path.write_text('{"colour": "blue"}')
    with pytest.raises(FileProblems, match="cannot tell which original config"):
        import_original(path)


def test_kind_detection_by_keys(tmp_path: Path) -> None:
    assert detect_kind(tmp_path / "x.json", {"f9t_chips": []}) == "f9t_config"
    assert detect_kind(tmp_path / "x.json", {"acquisition_methods": {}}) == "daq_data_server_config"
    assert detect_kind(tmp_path / "x.json", {"daq_nodes": [], "modules": []}) == "network_config"
    assert detect_kind(tmp_path / "x.json", {"daq_nodes": []}) == "daq_config"
    assert detect_kind(tmp_path / "x.json", {"max_workers": 5}) == "ublox_control_server_config"
    assert detect_kind(tmp_path / "x.json", {"data_dir": "/d"}) == "hp_io_config"
