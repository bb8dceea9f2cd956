"""Layered loading: file, drop-ins, environment, overrides; origins and error locations."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

from panoseti_appliance.config import (
    ApplianceConfig,
    ConfigError,
    add_config_argument,
    load_config,
    load_config_details,
    load_config_from_args,
    render_problems,
)
from tests.daemons import env_overrides


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def error(*args: object, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(*args, **kwargs)  # type: ignore[arg-type]
    return info.value


def test_layers_override_in_order_and_report_origins(tmp_path: Path) -> None:
    main = write(
        tmp_path / "panoseti.yaml",
        "daqdata:\n  max_concurrent_rpcs: 10\n  shutdown_grace_period: 1\n"
        "  hashpipe: {enabled: true, socket_group: daq}\nhp_io:\n  module_ids: [1, 2]\n",
    )
    write(tmp_path / "panoseti.d/20-late.yaml", "daqdata:\n  shutdown_grace_period: 3\n")
    write(
        tmp_path / "panoseti.d/10-early.yaml",
        "daqdata:\n  shutdown_grace_period: 2\n  hashpipe:\n    enabled: false\nhp_io:\n  module_ids: [7]\n",
    )
    write(tmp_path / "panoseti.d/ignored.txt", "not: [yaml\n")
    environ = {"PANOSETI_DAQDATA__MAX_CONCURRENT_RPCS": "7", "PANOSETI_LOGGING__LEVEL": "debug"}
    loaded = load_config_details(main, overrides={"logging": {"level": "error"}}, environ=environ)
    config = loaded.config
    assert config.daqdata.max_concurrent_rpcs == 7
    assert config.daqdata.shutdown_grace_period == 3
    # mappings merge key by key: the drop-in changed enabled, the main file's group stays
    assert config.daqdata.hashpipe.enabled is False
    assert config.daqdata.hashpipe.socket_group == "daq"
    # lists replace
    assert config.hp_io.module_ids == [7]
    assert config.logging.level == "error"
    assert [layer.name for layer in loaded.layers] == [
        str(main),
        str(tmp_path / "panoseti.d/10-early.yaml"),
        str(tmp_path / "panoseti.d/20-late.yaml"),
        "environment",
        "command line",
    ]
    sources = loaded.sources()
    assert sources["daqdata.max_concurrent_rpcs"] == "env PANOSETI_DAQDATA__MAX_CONCURRENT_RPCS"
    assert sources["daqdata.shutdown_grace_period"] == f"{tmp_path / 'panoseti.d/20-late.yaml'}:2"
    assert sources["daqdata.hashpipe.socket_group"] == f"{main}:4"
    assert sources["hp_io.module_ids"] == f"{tmp_path / 'panoseti.d/10-early.yaml'}:6"
    assert sources["logging.level"] == "command line"
    assert sources["daqdata.listen"] == "default"


def test_panoseti_config_names_the_main_file(tmp_path: Path) -> None:
    main = write(tmp_path / "site.yaml", "daqdata:\n  max_concurrent_rpcs: 5\n")
    write(tmp_path / "panoseti.d/a.yaml", "hp_io:\n  data_dir: /data\n")
    config = load_config(environ={"PANOSETI_CONFIG": str(main)})
    assert config.daqdata.max_concurrent_rpcs == 5
    assert config.hp_io.data_dir == Path("/data")


def test_explicit_file_wins_over_panoseti_config(tmp_path: Path) -> None:
    explicit = write(tmp_path / "a.yaml", "daqdata:\n  max_concurrent_rpcs: 1\n")
    other = write(tmp_path / "b.yaml", "daqdata:\n  max_concurrent_rpcs: 2\n")
    config = load_config(explicit, environ={"PANOSETI_CONFIG": str(other)})
    assert config.daqdata.max_concurrent_rpcs == 1


def test_environment_values_are_json_or_plain_strings(tmp_path: Path) -> None:
    environ = {
        "PANOSETI_DAQDATA__LISTEN": '["127.0.0.1:6000", "unix:///tmp/d.sock"]',
        "PANOSETI_DAQDATA__HASHPIPE__ENABLED": "false",
        "PANOSETI_DAQDATA__HASHPIPE__SOCKET_GROUP": "1000",
        "PANOSETI_HP_IO__DATA_DIR": "/mnt/data10",
        "PANOSETI_DAQDATA__SIMULATOR": '{"module_ids": [1, 2]}',
        "PANOSETI_DAQDATA__SIMULATOR__MODE": "rpc",
        "PANOSETI_UNRELATED": "x",
    }
    config = load_config(write(tmp_path / "c.yaml", ""), environ=environ)
    assert config.daqdata.listen == ["127.0.0.1:6000", "unix:///tmp/d.sock"]
    assert config.daqdata.hashpipe.enabled is False
    assert config.daqdata.hashpipe.socket_group == "1000"
    assert config.hp_io.data_dir == Path("/mnt/data10")
    assert config.daqdata.simulator.module_ids == [1, 2]
    assert config.daqdata.simulator.mode == "rpc"


def test_daemon_fixture_settings_round_trip_through_the_environment(tmp_path: Path) -> None:
    settings = {
        "daqdata": {
            "listen": ["127.0.0.1:45678", f"unix://{tmp_path}/daqdata.sock"],
            "max_concurrent_rpcs": 3,
            "hashpipe": {"socket_template": str(tmp_path / "hp.dp_{dp}.sock")},
        },
        "hp_io": {
            "data_dir": str(tmp_path),
            "simulate_daq": False,
            "update_interval_seconds": 0.05,
        },
        "logging": {"level": "debug"},
    }
    config = load_config(write(tmp_path / "empty.yaml", ""), environ=env_overrides(settings))
    assert config.daqdata.listen == settings["daqdata"]["listen"]  # type: ignore[index]
    assert config.daqdata.max_concurrent_rpcs == 3
    assert config.daqdata.hashpipe.socket_template == str(tmp_path / "hp.dp_{dp}.sock")
    assert config.hp_io.update_interval_seconds == 0.05
    assert config.logging.level == "debug"


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    err = error(
        write(tmp_path / "c.yaml", ""),
        environ={
            "PANOSETI_DAQDATA__MAX_CONCURRENT_RPCS": "lots",
            "PANOSETI_DAQDATA__NO_SUCH_KEY": "1",
        },
    )
    assert err.problems == [
        "env PANOSETI_DAQDATA__MAX_CONCURRENT_RPCS: daqdata.max_concurrent_rpcs: Input should be "
        "a valid integer, unable to parse string as an integer (got 'lots')",
        "env PANOSETI_DAQDATA__NO_SUCH_KEY: daqdata.no_such_key: unknown key; remove it "
        "(known keys here: " + err.problems[1].split("known keys here: ")[1],
    ]
    assert "max_concurrent_rpcs" in err.problems[1]


def test_environment_section_given_a_scalar(tmp_path: Path) -> None:
    err = error(
        write(tmp_path / "c.yaml", ""),
        environ={"PANOSETI_DAQDATA__HASHPIPE": "off", "PANOSETI_HP_IO": "not a config variable"},
    )
    (problem,) = err.problems
    assert problem.startswith("env PANOSETI_DAQDATA__HASHPIPE: daqdata.hashpipe: ")
    assert "dictionary" in problem


def test_nested_env_var_under_a_scalar_is_rejected(tmp_path: Path) -> None:
    err = error(
        write(tmp_path / "c.yaml", ""),
        environ={"PANOSETI_DAQDATA__LISTEN": '["a:1"]', "PANOSETI_DAQDATA__LISTEN__X": "1"},
    )
    assert err.problems == [
        "env PANOSETI_DAQDATA__LISTEN__X: daqdata.listen is already set to a non-mapping by "
        "env PANOSETI_DAQDATA__LISTEN; unset one of them"
    ]


def test_missing_main_file(tmp_path: Path) -> None:
    err = error(tmp_path / "nope.yaml", environ={})
    assert err.problems == [
        f"{tmp_path / 'nope.yaml'}: file not found; check the path (--config / PANOSETI_CONFIG)"
    ]
    err = error(environ={"PANOSETI_CONFIG": str(tmp_path / "gone.yaml")})
    assert str(tmp_path / "gone.yaml") in err.problems[0]


def test_invalid_yaml_gives_file_and_line(tmp_path: Path) -> None:
    main = write(tmp_path / "p.yaml", "daqdata:\n  listen: [a\n  max_concurrent_rpcs: 3\n")
    (problem,) = error(main, environ={}).problems
    assert problem.startswith(f"{main}:3: invalid YAML:")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    main = write(tmp_path / "p.yaml", "\n- daqdata\n")
    (problem,) = error(main, environ={}).problems
    assert problem.startswith(f"{main}:2: the top level must be a mapping")


def test_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    main = write(tmp_path / "p.yaml", "hp_io:\n  data_dir: /a\n  data_dir: /b\n")
    (problem,) = error(main, environ={}).problems
    assert problem == f"{main}:3: hp_io.data_dir: duplicate key (first at line 2); keep one"


def test_a_drop_in_breaking_one_key_is_located_in_the_drop_in(tmp_path: Path) -> None:
    main = write(tmp_path / "panoseti.yaml", "daqdata:\n  max_concurrent_rpcs: 10\n")
    bad = write(
        tmp_path / "panoseti.d/50-bad.yaml", "# tuning\ndaqdata:\n  max_concurrent_rpcs: -4\n"
    )
    err = error(main, environ={})
    assert err.problems == [
        f"{bad}:3: daqdata.max_concurrent_rpcs: Input should be greater than or equal to 1 (got -4)"
    ]


def test_every_problem_of_every_file_is_reported_before_failing(tmp_path: Path) -> None:
    main = write(tmp_path / "panoseti.yaml", "daqdata: [\n")
    write(tmp_path / "panoseti.d/a.yaml", "hp_io: {data_dir: /a, data_dir: /b}\n")
    err = error(main, environ={"PANOSETI_DAQDATA__X__": "1"})
    assert len(err.problems) == 3
    assert str(err) == "\n".join(err.problems)
    rendered = render_problems(err)
    assert rendered.splitlines()[0] == "invalid configuration (3 problems):"
    assert rendered.splitlines()[1:] == err.problems


def test_argparse_helpers(tmp_path: Path) -> None:
    main = write(tmp_path / "p.yaml", "daqdata:\n  max_concurrent_rpcs: 10\n")
    parser = argparse.ArgumentParser()
    add_config_argument(parser)
    args = parser.parse_args(
        [
            "--config",
            str(main),
            "--set",
            "daqdata.max_concurrent_rpcs=8",
            "--set",
            "hp_io.data_dir=/x",
        ]
    )
    config = load_config_from_args(args, environ={"PANOSETI_DAQDATA__MAX_CONCURRENT_RPCS": "9"})
    assert config.daqdata.max_concurrent_rpcs == 8
    assert config.hp_io.data_dir == Path("/x")
    bad = parser.parse_args(["--config", str(main), "--set", "daqdata.max_concurrent_rpcs"])
    with pytest.raises(ConfigError, match=r"write KEY\.PATH=VALUE"):
        load_config_from_args(bad, environ={})
    wrong = parser.parse_args(["--config", str(main), "--set", "daqdata.max_concurrent_rpcs=0"])
    with pytest.raises(ConfigError, match=r"^command line: daqdata.max_concurrent_rpcs: "):
        load_config_from_args(wrong, environ={})


def test_a_section_header_with_everything_commented_out_means_defaults(tmp_path: Path) -> None:
    main = write(
        tmp_path / "p.yaml",
        "daqdata:\n  # max_concurrent_rpcs: 5\n  hashpipe:\nhp_io:\nublox:\n  position:\n",
    )
    config = load_config(main, environ={})
    assert config.daqdata.hashpipe.enabled is True
    assert config.hp_io.data_dir == Path("/mnt/panoseti")
    assert config.ublox.position is None


def test_an_unknown_section_in_the_environment_is_an_error(tmp_path: Path) -> None:
    err = error(write(tmp_path / "c.yaml", ""), environ={"PANOSETI_DAQDAT__LISTEN": "[]"})
    assert err.problems == [
        "env PANOSETI_DAQDAT__LISTEN: daqdat: unknown key; remove it (did you mean 'daqdata'?)"
    ]


def test_a_section_given_as_json_merges_with_its_variables_in_any_order(tmp_path: Path) -> None:
    main = write(tmp_path / "c.yaml", "")
    for environ in (
        {
            "PANOSETI_DAQDATA__SIMULATOR__MODE": "rpc",
            "PANOSETI_DAQDATA__SIMULATOR": '{"module_ids": [1, 2], "mode": "uds"}',
        },
        {
            "PANOSETI_DAQDATA__SIMULATOR": '{"module_ids": [1, 2], "mode": "uds"}',
            "PANOSETI_DAQDATA__SIMULATOR__MODE": "rpc",
        },
    ):
        loaded = load_config_details(main, environ=environ)
        assert loaded.config.daqdata.simulator.module_ids == [1, 2]
        assert loaded.config.daqdata.simulator.mode == "rpc"
        assert loaded.source_of(("daqdata", "simulator", "module_ids")) == (
            "env PANOSETI_DAQDATA__SIMULATOR"
        )


def test_null_in_the_environment_is_none(tmp_path: Path) -> None:
    main = write(tmp_path / "c.yaml", "daqdata:\n  simulator:\n    rpc_target: unix:///tmp/s\n")
    environ = {"PANOSETI_DAQDATA__SIMULATOR__RPC_TARGET": "null"}
    assert load_config(main, environ=environ).daqdata.simulator.rpc_target is None


def test_two_loads_in_one_process_keep_their_own_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PANOSETI_DAQDATA__MAX_CONCURRENT_RPCS", "9")
    first = write(tmp_path / "a" / "panoseti.yaml", "logging:\n  level: debug\n")
    second = write(tmp_path / "b" / "panoseti.yaml", "hp_io:\n  force: true\n")
    a = load_config(first, environ={"PANOSETI_DAQDATA__MAX_CONCURRENT_RPCS": "3"})
    b = load_config(second, overrides={"ublox": {"baud": 9600}}, environ={})
    assert (a.daqdata.max_concurrent_rpcs, a.logging.level, a.hp_io.force) == (3, "debug", False)
    assert (b.daqdata.max_concurrent_rpcs, b.logging.level, b.hp_io.force) == (100, "info", True)
    assert (a.ublox.baud, b.ublox.baud) == (115200, 9600)
    # The process environment is read only when no environment is given, and never by the model.
    assert load_config(second).daqdata.max_concurrent_rpcs == 9
    assert ApplianceConfig() == load_config(write(tmp_path / "empty.yaml", ""), environ={})
    assert type(a) is ApplianceConfig


class _Meeting(PydanticBaseSettingsSource):
    """A source that gives its data only once every concurrent build has started reading."""

    def __init__(self, data: dict[str, Any], barrier: threading.Barrier) -> None:
        super().__init__(ApplianceConfig)
        self.data = data
        self.barrier = barrier

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        self.barrier.wait(timeout=30)
        return self.data


def test_concurrent_builds_never_see_each_others_sources() -> None:
    barrier = threading.Barrier(2)
    results: dict[int, ApplianceConfig] = {}

    def build(rpcs: int) -> None:
        source = _Meeting({"daqdata": {"max_concurrent_rpcs": rpcs}}, barrier)
        results[rpcs] = ApplianceConfig.from_sources([source])

    threads = [threading.Thread(target=build, args=(n,)) for n in (11, 22)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {n: c.daqdata.max_concurrent_rpcs for n, c in results.items()} == {11: 11, 22: 22}
    assert ApplianceConfig().daqdata.max_concurrent_rpcs == 100
