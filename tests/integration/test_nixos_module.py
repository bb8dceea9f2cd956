"""The NixOS module (nixos/module.nix) evaluated with nixpkgs' real lib.evalModules.

nixos/tests/eval/ declares the NixOS options the module sets, free-form, and stands in for the
two parts of `pkgs` it uses; nixos/tests/eval/cases.nix holds the configurations. Each rendered
configuration is then given to the real `panoseti config check`, as the module's build-time
check does. Nix comes from Debian's nix-bin; nixpkgs' lib from $NIXPKGS_LIB (the Makefile points
it at the vendored copy when there is one).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.prerequisites import unavailable

REPO = Path(__file__).resolve().parents[2]
EVAL = REPO / "nixos" / "tests" / "eval"
UNITS = REPO / "systemd"
PANOSETI = Path(sys.executable).with_name("panoseti")
#: Folders that hold no project .nix file.
NOT_PROJECT = {".git", ".venv", "build", "node_modules", "demo-output"}


def nix_instantiate() -> str:
    found = shutil.which("nix-instantiate")
    if found is None:
        unavailable("nix-instantiate not found (Debian package nix-bin)")
    return found


def nixpkgs_lib() -> Path:
    """nixpkgs' lib/ folder; without it the evaluation tests skip, even under `make test`."""
    value = os.environ.get("NIXPKGS_LIB", "")
    if not value:
        pytest.skip("NIXPKGS_LIB is unset: point it at nixpkgs' lib/ to evaluate the NixOS module")
    path = Path(value)
    if not (path / "default.nix").is_file():
        pytest.fail(f"NIXPKGS_LIB={value} has no default.nix: give nixpkgs' lib/ folder")
    return path


def nix_eval(expression: str) -> Any:
    result = subprocess.run(
        [nix_instantiate(), "--eval", "--strict", "--json", "--expr", expression],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def project_nix_files() -> list[Path]:
    found = []
    for directory, subdirs, files in os.walk(REPO):
        subdirs[:] = sorted(d for d in subdirs if d not in NOT_PROJECT)
        found += [Path(directory, f) for f in sorted(files) if f.endswith(".nix")]
    return found


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    """Every case of cases.nix, evaluated once: its summary plus the messages it must fire."""
    lib = nixpkgs_lib()
    evaluated: dict[str, Any] = nix_eval(
        f"""
        let
          lib = import {json.dumps(str(lib))};
          cases = import ./nixos/tests/eval/cases.nix;
        in
        builtins.mapAttrs (name: case:
          import ./nixos/tests/eval/summary.nix {{ inherit lib; inherit (case) module; }}
          // {{ expectedFails = case.fails; }}) cases
        """
    )
    return evaluated


def check_config(settings: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`panoseti config check` on the file the module would render from these settings."""
    path = tmp_path / "panoseti.yaml"
    path.write_text(yaml.safe_dump(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANOSETI_")}
    return subprocess.run(
        [str(PANOSETI), "config", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def daqdata_socket_paths() -> list[str]:
    text = (UNITS / "panoseti-daqdata.socket").read_text()
    return re.findall(r"^ListenStream=(\S+)$", text, re.MULTILINE)


# -- every .nix file parses --------------------------------------------------------------------


def test_the_project_has_its_nix_files() -> None:
    names = {p.relative_to(REPO).as_posix() for p in project_nix_files()}
    assert {"flake.nix", "nixos/module.nix", "nixos/tests/eval/harness.nix"} <= names


@pytest.mark.parametrize("path", project_nix_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_nix_file_parses(path: Path) -> None:
    result = subprocess.run(
        [nix_instantiate(), "--parse", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# -- assertions --------------------------------------------------------------------------------


def test_every_case_was_evaluated(results: dict[str, Any]) -> None:
    assert len(results) >= 13
    assert {"defaults", "full-node", "head-node", "ublox-without-chips"} <= results.keys()


@pytest.mark.parametrize(
    "case",
    [
        "defaults",
        "disabled",
        "full-node",
        "head-node",
        "custom-user",
        "bad-setting-value",
        "firewall-without-tcp",
        "firewall-on-loopback",
        "ublox-firewall-without-tcp",
        "ublox-without-chips",
        "chip-with-device",
        "no-hashpipe-sockets",
        "data-products-disagree",
        "relative-data-dir",
    ],
)
def test_exactly_the_expected_assertions_fire(results: dict[str, Any], case: str) -> None:
    result = results[case]
    fired: list[str] = result["failedAssertions"]
    for piece in result["expectedFails"]:
        assert any(piece in message for message in fired), (piece, fired)
    assert len(fired) == len(result["expectedFails"]), fired


def test_each_assertion_names_the_option_and_the_fix(results: dict[str, Any]) -> None:
    messages = [m for r in results.values() for m in r["failedAssertions"]]
    assert len(messages) == 8
    for message in messages:
        assert message.startswith("services.panoseti."), message
        fix = message.rsplit(":", 1)[-1]
        assert re.search(r"\b(set|add|remove|give|list)\b", fix), message


# -- the rendered configuration ----------------------------------------------------------------


def test_defaults_render_an_explicit_daqdata_configuration(results: dict[str, Any]) -> None:
    assert results["defaults"]["settings"] == {
        "daqdata": {
            "listen": ["0.0.0.0:50051", "unix:///run/panoseti/daqdata.sock"],
            "hashpipe": {
                "data_products": ["img8", "img16", "ph256", "ph1024"],
                "socket_group": "panoseti",
            },
        },
        "hp_io": {"data_dir": "/mnt/panoseti"},
    }


@pytest.mark.parametrize("case", ["defaults", "full-node", "head-node", "custom-user"])
def test_rendered_configuration_passes_config_check(
    results: dict[str, Any], case: str, tmp_path: Path
) -> None:
    check = check_config(results[case]["settings"], tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "is valid" in check.stdout


def test_options_and_settings_reach_the_daemons(results: dict[str, Any], tmp_path: Path) -> None:
    from panoseti_appliance.config.loader import load_config

    path = tmp_path / "panoseti.yaml"
    path.write_text(yaml.safe_dump(results["full-node"]["settings"]))
    config = load_config(path, environ={})
    assert config.hp_io.data_dir == Path("/data/panoseti")
    assert config.hp_io.module_ids == [1, 2]
    assert config.daqdata.hashpipe.data_products == ["img16", "ph256"]
    assert config.daqdata.max_concurrent_rpcs == 200
    assert config.ublox.listen == ["0.0.0.0:50052", "unix:///run/panoseti/ublox.sock"]
    assert [chip.uid for chip in config.ublox.chips] == ["DF03A241BC"]
    assert config.logging.level == "debug"


def test_a_bad_value_is_refused_by_the_build_time_check(
    results: dict[str, Any], tmp_path: Path
) -> None:
    check = check_config(results["bad-setting-value"]["settings"], tmp_path)
    assert check.returncode != 0
    assert "daqdata.max_concurrent_rpcs" in check.stderr


def test_the_config_file_is_the_checked_rendering(results: dict[str, Any]) -> None:
    result = results["defaults"]
    checked = result["configFile"]
    assert result["etc"] == {"panoseti/panoseti.yaml": checked["path"]}
    assert checked["nativeBuildInputs"] == [result["systemPackages"][0]]
    rendered = re.search(r"panoseti config check --config (\S+)\n", checked["script"])
    assert rendered is not None
    assert rendered.group(1).endswith("-panoseti.yaml")
    assert f'cp {rendered.group(1)} "$out"' in checked["script"]


# -- what the module sets outside services.panoseti --------------------------------------------


@pytest.mark.parametrize("case", ["defaults", "full-node", "custom-user"])
def test_unit_overrides_name_units_of_the_package(results: dict[str, Any], case: str) -> None:
    result = results[case]
    units = [f"{name}.service" for name in result["services"]]
    units += [f"{name}.socket" for name in result["sockets"]]
    assert units
    for unit in units:
        assert (UNITS / unit).is_file(), f"{unit} is not in systemd/"
    for override in [*result["services"].values(), *result["sockets"].values()]:
        assert override["overrideStrategy"] == "asDropin"
    assert result["systemdPackages"] == ["panoseti-appliance-0.1.0"]


def test_a_daq_node_starts_its_units_at_boot(results: dict[str, Any]) -> None:
    result = results["defaults"]
    assert result["sockets"]["panoseti-daqdata"]["wantedBy"] == ["sockets.target"]
    daqdata = result["services"]["panoseti-daqdata"]
    assert daqdata["wantedBy"] == ["multi-user.target"]
    assert daqdata["restartTriggers"] == [result["configFile"]["path"]]
    assert daqdata["environment"] == {"PANOSETI_CONFIG": "/etc/panoseti/panoseti.yaml"}
    assert daqdata["stopIfChanged"] is False  # a switch restarts it: Hashpipe stays connected
    assert set(result["services"]) == {"panoseti-daqdata"}
    assert result["udevPackages"] == []


def test_module_socket_paths_are_the_unit_files(results: dict[str, Any]) -> None:
    """With every product the override lists the package's own sockets, in the same order."""
    listen = results["defaults"]["sockets"]["panoseti-daqdata"]["listenStreams"]
    assert listen == ["", *daqdata_socket_paths()]


def test_hashpipe_sockets_choose_the_listen_streams(results: dict[str, Any]) -> None:
    result = results["full-node"]
    assert result["sockets"]["panoseti-daqdata"]["listenStreams"] == [
        "",
        "/tmp/hashpipe_grpc.dp_img16.sock",
        "/tmp/hashpipe_grpc.dp_ph256.sock",
    ]
    assert result["tmpfiles"] == [
        "d /run/panoseti 0755 panoseti panoseti -",
        "x /tmp/hashpipe_grpc.dp_img16.sock",
        "x /tmp/hashpipe_grpc.dp_ph256.sock",
    ]


def test_ublox_gets_the_udev_rule_and_the_template_override(results: dict[str, Any]) -> None:
    result = results["full-node"]
    assert result["udevPackages"] == ["panoseti-appliance-0.1.0"]
    assert (UNITS / "60-panoseti-ublox.rules").is_file()
    template = result["services"]["panoseti-ubloxcontrol@"]
    assert "wantedBy" not in template  # udev starts one instance per receiver
    assert template["serviceConfig"] == {"User": "panoseti", "Group": "panoseti"}


def test_open_firewall_opens_the_tcp_listen_ports(results: dict[str, Any]) -> None:
    assert results["full-node"]["allowedTCPPorts"] == [50051, 50052]
    assert results["defaults"]["allowedTCPPorts"] == []


def test_default_user_and_group_are_created(results: dict[str, Any]) -> None:
    result = results["defaults"]
    assert result["users"]["panoseti"]["isSystemUser"] is True
    assert result["users"]["panoseti"]["group"] == "panoseti"
    assert result["groups"] == {"panoseti": {}}


def test_another_user_and_group_are_used_not_created(results: dict[str, Any]) -> None:
    result = results["custom-user"]
    assert result["users"] == {}
    assert result["groups"] == {}
    assert result["settings"]["daqdata"]["hashpipe"]["socket_group"] == "hashpipe"
    socket = result["sockets"]["panoseti-daqdata"]["socketConfig"]
    assert socket == {"SocketUser": "hashpipe", "SocketGroup": "hashpipe"}
    assert result["services"]["panoseti-daqdata"]["serviceConfig"]["User"] == "hashpipe"
    assert result["tmpfiles"][0] == "d /run/panoseti 0755 hashpipe hashpipe -"


def test_a_head_node_runs_no_daemon(results: dict[str, Any]) -> None:
    result = results["head-node"]
    assert result["services"] == {}
    assert result["sockets"] == {}
    assert result["systemdPackages"] == []
    assert result["systemPackages"] == ["panoseti-appliance-0.1.0"]
    assert "daqdata" not in result["settings"]
    assert len(result["settings"]["observatory"]["daq_nodes"]) == 2


def test_disabled_sets_nothing(results: dict[str, Any]) -> None:
    result = results["disabled"]
    assert result["etc"] == {}
    assert result["systemPackages"] == []
    assert result["services"] == {}
    assert result["configFile"] is None


def test_the_flake_check_passes() -> None:
    """checks.<system>.module-eval, with a `pkgs` that hands back the build script."""
    lib = nixpkgs_lib()
    script = nix_eval(
        f"""
        import ./nixos/tests/module-eval.nix {{
          lib = import {json.dumps(str(lib))};
          pkgs.runCommand = name: env: script: script;
        }}
        """
    )
    assert re.search(r"echo \"(\d+) configurations evaluated\"", script)


def test_docs_option_reference_is_current() -> None:
    """docs/nixos.md's "Options" section is what tools/gen_nixos_options.py renders today."""
    lib = nixpkgs_lib()
    nix_instantiate()
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "gen_nixos_options.py"), "--check"],
        capture_output=True,
        text=True,
        env={**os.environ, "NIXPKGS_LIB": str(lib)},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "### `services.panoseti.daqdata.openFirewall`" in (REPO / "docs" / "nixos.md").read_text()
    )
