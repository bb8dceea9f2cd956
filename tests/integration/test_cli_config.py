"""`panoseti config …` as operators run it: a real subprocess, real files, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ORIGINALS = REPO / "tests" / "data" / "original_configs"
PANOSETI = str(Path(sys.executable).parent / "panoseti")


def run(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """Run `panoseti config ARGS` without any PANOSETI_* variable of the calling environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PANOSETI_")}
    clean.update(env or {})
    return subprocess.run(
        [PANOSETI, "config", *args],
        capture_output=True,
        text=True,
        env=clean,
        cwd=cwd,
        timeout=60,
    )


def rejected(tmp_path: Path, text: str) -> tuple[str, list[tuple[int, str, str]]]:
    """`check` a config file of `text`, which must fail: the summary line it prints first, then
    each problem as (line number, key path, message), every one located in that file."""
    config = tmp_path / "panoseti.yaml"
    config.write_text(text)
    result = run("check", "--config", str(config))
    assert result.returncode == 1
    assert result.stdout == ""
    summary, *lines = result.stderr.splitlines()
    problems = []
    for line in lines:
        where, key, message = line.split(": ", 2)
        file, _, number = where.rpartition(":")
        assert file == str(config), line
        problems.append((int(number), key, message))
    return summary, problems


def test_check_accepts_the_shipped_examples() -> None:
    result = run("check", "--config", "examples/node.yaml", "examples/simulator.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "defaults",
        "read examples/node.yaml",
        "ok: examples/node.yaml is valid",
        "defaults",
        "read examples/simulator.yaml",
        "ok: examples/simulator.yaml is valid",
    ]


def test_check_lists_every_layer(tmp_path: Path) -> None:
    main = tmp_path / "panoseti.yaml"
    main.write_text("hp_io:\n  data_dir: /data\n")
    (tmp_path / "panoseti.d").mkdir()
    (tmp_path / "panoseti.d" / "10-site.yaml").write_text("logging: {level: debug}\n")
    result = run(
        "check",
        "--set",
        "daqdata.max_concurrent_rpcs=3",
        env={"PANOSETI_CONFIG": str(main), "PANOSETI_HP_IO__FORCE": "true"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "defaults",
        f"read {main}",
        f"read {tmp_path / 'panoseti.d' / '10-site.yaml'}",
        "environment: 1 variable(s): PANOSETI_HP_IO__FORCE",
        "read command line",
        "ok: configuration is valid",
    ]


def test_check_prints_file_and_line_for_each_problem(tmp_path: Path) -> None:
    summary, problems = rejected(
        tmp_path,
        "daqdata:\n"
        "  max_concurrent_rpcs: 0\n"
        "  listen: ['0.0.0.0:99999']\n"
        "hp_io:\n"
        "  simulate_daq: maybe\n"
        "ublox:\n"
        "  chips:\n"
        "    - {uid: nothex}\n",
    )
    assert summary == "invalid configuration (4 problems):"
    assert sorted(problem[:2] for problem in problems) == [
        (2, "daqdata.max_concurrent_rpcs"),
        (3, "daqdata.listen"),
        (5, "hp_io.simulate_daq"),
        (8, "ublox.chips[0].uid"),
    ]


def test_check_of_several_files_fails_if_one_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("hp_io: [\n")
    result = run("check", "--config", "examples/node.yaml", str(bad))
    assert result.returncode == 1
    assert "ok: examples/node.yaml is valid" in result.stdout
    assert f"{bad}:2: invalid YAML" in result.stderr


def test_check_missing_file() -> None:
    result = run("check", "--config", "/nonexistent/panoseti.yaml")
    assert result.returncode == 1
    assert "/nonexistent/panoseti.yaml: file not found" in result.stderr


def test_check_bad_environment_value(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    result = run(
        "check", "--config", str(empty), env={"PANOSETI_DAQDATA__SHUTDOWN_GRACE_PERIOD": "soon"}
    )
    assert result.returncode == 1
    assert "env PANOSETI_DAQDATA__SHUTDOWN_GRACE_PERIOD: daqdata.shutdown_grace_period:" in (
        result.stderr
    )


def test_show_json_gives_each_value_with_its_source(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("hp_io:\n  data_dir: /mnt/data10\n")
    result = run(
        "show",
        "--json",
        "--config",
        str(empty),
        env={"PANOSETI_DAQDATA__MAX_CONCURRENT_RPCS": "7"},
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["config"]["daqdata"]["max_concurrent_rpcs"] == 7
    assert shown["values"]["daqdata.max_concurrent_rpcs"] == {
        "value": 7,
        "source": "env PANOSETI_DAQDATA__MAX_CONCURRENT_RPCS",
    }
    assert shown["values"]["hp_io.data_dir"] == {"value": "/mnt/data10", "source": f"{empty}:2"}
    assert shown["values"]["daqdata.shutdown_grace_period"] == {"value": 5.0, "source": "default"}


def test_show_text(tmp_path: Path) -> None:
    main = tmp_path / "p.yaml"
    main.write_text("logging:\n  level: warning\n")
    result = run("show", "--config", str(main))
    assert result.returncode == 0, result.stderr
    assert f'logging.level = "warning"  # {main}:2' in result.stdout.splitlines()


def test_import_prints_yaml_that_checks_clean(tmp_path: Path) -> None:
    originals = [
        str(ORIGINALS / name)
        for name in ("daq_data_server_config.json", "f9t_config.json5", "daq_config.json")
    ]
    result = run("import", *originals)
    assert result.returncode == 0, result.stderr
    assert "max_read_queue_size: deprecated" in result.stderr
    converted = tmp_path / "panoseti.yaml"
    converted.write_text(result.stdout)
    check = run("check", "--config", str(converted))
    assert check.returncode == 0, check.stderr
    via_yaml = json.loads(run("show", "--json", "--config", str(converted)).stdout)["config"]
    direct = json.loads(run("show", "--json", "--config", originals[0]).stdout)["config"]
    assert via_yaml["daqdata"] == direct["daqdata"]
    assert via_yaml["hp_io"] == direct["hp_io"]


def test_import_rejects_a_chip_without_uid(tmp_path: Path) -> None:
    bad = tmp_path / "f9t_config.json5"
    bad.write_text("{\n  // one chip\n  f9t_chips: [{device: '/dev/ttyACM0',},],\n}\n")
    result = run("import", str(bad))
    assert result.returncode == 1
    assert f"{bad}:3: f9t_chips[0]: chip has no f9t_uid" in result.stderr


def test_schema_is_json_schema_of_every_section() -> None:
    result = run("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert set(schema["properties"]) == {
        "daqdata",
        "hp_io",
        "ublox",
        "logging",
        "observatory",
        "access",
    }
    assert schema["additionalProperties"] is False


def test_docs_check_detects_a_stale_page(tmp_path: Path) -> None:
    current = run("docs", "--output", "docs/configuration.md", "--check")
    assert current.returncode == 0, current.stderr
    stale = tmp_path / "configuration.md"
    stale.write_text("# old\n")
    result = run("docs", "--output", str(stale), "--check")
    assert result.returncode == 1
    assert "is stale" in result.stderr
    written = run("docs", "--output", str(stale))
    assert written.returncode == 0
    assert stale.read_text() == (REPO / "docs" / "configuration.md").read_text()


def test_check_reports_what_init_f9t_would_reject(tmp_path: Path) -> None:
    summary, problems = rejected(
        tmp_path,
        "ublox:\n"
        "  cfg_key_settings:\n"
        "    - {key: CFG_TP_FREQ_TP1, value: 1.5}\n"
        "    - {key: CFG_NOT_A_KEY, value: 1}\n"
        "  chips:\n"
        "    - {uid: DF03A241BC, device: /dev/ttyACM0}\n"
        "    - uid: DF03A241BD\n"
        "      cfg_key_settings:\n"
        "        - {key: CFG_TP_TP1_ENA, value: 7}\n"
        "    - {uid: DF03A241BE}\n",
    )
    assert summary == "invalid configuration (3 problems):"
    assert [problem[:2] for problem in problems] == [
        (3, "ublox.cfg_key_settings[0].value"),
        (4, "ublox.cfg_key_settings[1].key"),
        (9, "ublox.chips[1].cfg_key_settings[0].value"),
    ]
    assert "CFG_NOT_A_KEY" in problems[1][2]
    assert problems[2][2].endswith(
        "CFG_TP_TP1_ENA: 7 is not a boolean; give true/false or 0/1 (type L)"
    )
