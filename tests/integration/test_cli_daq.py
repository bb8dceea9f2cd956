"""Every `panoseti daq` subcommand as a subprocess against a live daemon (docs/clients.md)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemons import Daemon, clean_environ, free_tcp_port
from tests.unit.test_plot import assert_png_looks_live

PANOSETI = str(Path(sys.executable).parent / "panoseti")
TIMEOUT = 90.0
LINE = re.compile(
    r"^127\.0\.0\.1:\d+ module=(1|254) (img16|ph256) frame=\d+ wr \S+Z min=-?\d+ max=-?\d+$"
)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any server or appliance configuration, plus `extra`."""
    return clean_environ("DAQ_CFG", "NET_CFG", **extra)


def daq(
    *args: str, target: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    host = ["--host", target] if target else []
    return subprocess.run(
        [PANOSETI, "daq", *host, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=clean_env() if env is None else env,
    )


def test_ping_hosts_reflect(sim_daqdata: Daemon) -> None:
    ping = daq("ping", target=sim_daqdata.target)
    assert ping.returncode == 0, ping.stderr
    assert ping.stdout.strip() == f"{sim_daqdata.target}: ok"
    hosts = daq("hosts", target=sim_daqdata.target)
    assert json.loads(hosts.stdout) == {sim_daqdata.target: True}
    reflect = daq("reflect", target=sim_daqdata.target)
    assert reflect.returncode == 0, reflect.stderr
    assert (
        "rpc InitHpIo(daqdata.InitHpIoRequest) returns (daqdata.InitHpIoResponse)" in reflect.stdout
    )


def test_ping_with_one_host_down(sim_daqdata: Daemon) -> None:
    down = f"127.0.0.1:{free_tcp_port()}"
    result = daq("--host", down, "ping", target=sim_daqdata.target)
    assert result.returncode == 1
    assert f"{down}: no answer" in result.stdout
    assert f"{sim_daqdata.target}: ok" in result.stdout


def test_init_and_init_sim(sim_daqdata: Daemon, tmp_path: Path) -> None:
    cfg = tmp_path / "hp_io_config_simulate.json"
    cfg.write_text(
        json.dumps(
            {
                "data_dir": "simulated_data_dir",
                "update_interval_seconds": 0.01,
                "force": True,
                "simulate_daq": True,
                "module_ids": [],
                "comments": "ignored",
            }
        )
    )
    init = daq("init", str(cfg), target=sim_daqdata.target)
    assert init.returncode == 0, init.stderr
    assert f"InitHpIo succeeded on {sim_daqdata.target}" in init.stdout
    sim = daq("init-sim", "--cfg", str(cfg), target=sim_daqdata.target)
    assert sim.returncode == 0, sim.stderr


def test_stream_lines_and_json(sim_daqdata: Daemon) -> None:
    lines = daq("stream", "--count", "6", "--refresh-period", "0", target=sim_daqdata.target)
    assert lines.returncode == 0, lines.stderr
    out = lines.stdout.splitlines()
    assert len(out) == 6
    assert all(LINE.match(line) for line in out), out
    js = daq(
        "stream",
        "--json",
        "--no-movie",
        "--count",
        "3",
        "--module-ids",
        "254",
        target=sim_daqdata.target,
    )
    records = [json.loads(line) for line in js.stdout.splitlines()]
    assert len(records) == 3
    for record in records:
        assert (record["module_id"], record["dp"], record["type"]) == (254, "ph256", "PULSE_HEIGHT")
        assert record["wr_clock_desync"] is False
        assert re.fullmatch(r"\d{10}\.\d{9}", record["wr_unix_timestamp"])
        assert record["header"]["quabo_num"] in range(4)
        assert record["min"] <= record["max"]


def render_png(daemon: Daemon, tmp_path: Path, command: str, *args: str) -> str:
    """`panoseti daq COMMAND --png OUT --duration 2 ARGS`: it must succeed and write a PNG with
    live plots in it. Its stdout."""
    png = tmp_path / f"{command}.png"
    result = daq(command, "--png", str(png), "--duration", "2", *args, target=daemon.target)
    assert result.returncode == 0, result.stderr
    assert_png_looks_live(png)
    return result.stdout


def test_view_and_phdist_render_pngs(sim_daqdata: Daemon, tmp_path: Path) -> None:
    view = render_png(sim_daqdata, tmp_path, "view", "--refresh-period", "0.2")
    assert f"wrote {tmp_path / 'view.png'}" in view
    render_png(sim_daqdata, tmp_path, "phdist", "--durations", "1", "10")


def test_speed(sim_daqdata: Daemon) -> None:
    result = daq("speed", "--duration", "2", target=sim_daqdata.target)
    assert result.returncode == 0, result.stderr
    rates = re.findall(r"^(\d+) pkts / ([\d.]+)s = ([\d.]+) \(pkts/s\)$", result.stdout, re.M)
    assert rates
    assert all(int(n) > 0 for n, _, _ in rates)
    assert re.search(r"^\d+ images in [\d.]+ s = [\d.]+ images/s$", result.stdout, re.M)


def test_sigint_ends_a_stream_cleanly(sim_daqdata: Daemon) -> None:
    proc = subprocess.Popen(
        [PANOSETI, "daq", "--host", sim_daqdata.target, "stream", "--refresh-period", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert LINE.match(first.strip()), first
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--daq-config", "/nonexistent/daq_config.json", "hosts"],
            2,
            "/nonexistent/daq_config.json: file not found; check the path",
        ),
        (
            ["--host", "127.0.0.1:1", "stream", "--count", "1"],
            1,
            "no DaqData server answered Ping: tried 127.0.0.1:1",
        ),
        (
            ["--host", "127.0.0.1:1", "init", "/nonexistent.json"],
            2,
            "/nonexistent.json: file not found; check the path",
        ),
        (
            ["--host", "127.0.0.1:1", "stream", "--no-movie", "--no-ph"],
            2,
            "leave nothing to stream",
        ),
    ],
)
def test_clear_errors(args: list[str], code: int, message: str) -> None:
    result = daq(*args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_daq_config_contents(tmp_path: Path) -> None:
    config = tmp_path / "daq_config.json"
    config.write_text(json.dumps({"daq_nodes": [{"data_dir": "/mnt"}]}))
    result = daq("--daq-config", str(config), "ping")
    assert result.returncode == 2
    assert f"{config}:1: observatory.daq_nodes[0].ip_addr: required setting is missing" in (
        result.stderr
    )


def test_view_without_display_or_png_says_how_to_render(sim_daqdata: Daemon) -> None:
    env = clean_environ("DAQ_CFG", "NET_CFG", "DISPLAY", "WAYLAND_DISPLAY")
    for command in ("view", "phdist"):
        result = daq(command, "--duration", "1", target=sim_daqdata.target, env=env)
        assert result.returncode == 2
        assert "no display for a window: render headless with --png OUT" in result.stderr


def test_log_level_after_daq_turns_on_debug_logging(sim_daqdata: Daemon) -> None:
    quiet = daq("--log-level", "warning", "ping", target=sim_daqdata.target)
    debug = daq("ping", "--log-level", "debug", "--host", f"127.0.0.1:{free_tcp_port()}")
    assert quiet.returncode == 0
    assert "DEBUG" not in quiet.stderr
    assert debug.returncode == 1
    assert "DEBUG panoseti_appliance.daqdata.client.api" in debug.stderr


# --- servers from the appliance configuration (observatory.daq_nodes) ------------------------


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "panoseti.yaml"
    path.write_text(text)
    return path


def test_servers_from_the_config_file(sim_daqdata: Daemon, tmp_path: Path) -> None:
    config = write_config(
        tmp_path, f"observatory:\n  daq_nodes:\n    - {{ip_addr: '{sim_daqdata.target}'}}\n"
    )
    hosts = daq("hosts", "--config", str(config))
    assert hosts.returncode == 0, hosts.stderr
    assert json.loads(hosts.stdout) == {sim_daqdata.target: True}
    assert f"servers from observatory.daq_nodes ({config}:2)" in hosts.stderr
    stream = daq("--config", str(config), "stream", "--count", "2", "--refresh-period", "0")
    assert stream.returncode == 0, stream.stderr
    lines = stream.stdout.splitlines()
    assert len(lines) == 2, lines
    assert all(LINE.match(line) for line in lines), lines


def test_config_unix_target_and_port_forwarding(sim_daqdata: Daemon, tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is never contacted: its forwarding sends clients to the daemon.
    config = write_config(
        tmp_path,
        "observatory:\n  daq_nodes:\n"
        f"    - {{ip_addr: '{sim_daqdata.unix_target}', data_dir: /mnt/a}}\n"
        "    - {ip_addr: 192.0.2.1, data_dir: /mnt/b}\n"
        "  port_forwarding:\n"
        f"    192.0.2.1: {{status: true, gw_ip: '{sim_daqdata.target}', port: 22}}\n",
    )
    hosts = daq("hosts", "--config", str(config))
    assert hosts.returncode == 0, hosts.stderr
    assert json.loads(hosts.stdout) == {sim_daqdata.unix_target: True, sim_daqdata.target: True}
    assert (
        f"servers from observatory.daq_nodes ({config}:2), port forwarding from "
        f"observatory.port_forwarding ({config}:5)"
    ) in hosts.stderr


def test_config_nodes_from_the_environment(sim_daqdata: Daemon, tmp_path: Path) -> None:
    nodes = json.dumps([{"ip_addr": sim_daqdata.target}])
    env = clean_env(PANOSETI_OBSERVATORY__DAQ_NODES=nodes)
    ping = daq("--config", str(write_config(tmp_path, "")), "ping", env=env)
    assert ping.returncode == 0, ping.stderr
    assert ping.stdout.strip() == f"{sim_daqdata.target}: ok"
    hosts = daq("--config", str(tmp_path / "panoseti.yaml"), "hosts", env=env)
    assert "servers from observatory.daq_nodes (env PANOSETI_OBSERVATORY__DAQ_NODES)" in (
        hosts.stderr
    )


def test_host_then_daq_config_then_config_file(sim_daqdata: Daemon, tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_tcp_port()}"
    config = write_config(tmp_path, f"observatory:\n  daq_nodes:\n    - {{ip_addr: '{dead}'}}\n")
    daq_config = tmp_path / "daq_config.json"
    daq_config.write_text(json.dumps({"daq_nodes": [{"ip_addr": sim_daqdata.target}]}))
    with_host = daq(
        "--config",
        str(config),
        "--daq-config",
        str(daq_config),
        "hosts",
        target=sim_daqdata.unix_target,
    )
    assert json.loads(with_host.stdout) == {sim_daqdata.unix_target: True}
    assert f"servers from --host (data dirs from --daq-config {daq_config})" in with_host.stderr
    with_file = daq("--config", str(config), "--daq-config", str(daq_config), "hosts")
    assert json.loads(with_file.stdout) == {sim_daqdata.target: True}
    assert f"servers from --daq-config {daq_config}\n" in with_file.stderr
    from_env = daq("--config", str(config), "hosts", env=clean_env(DAQ_CFG=str(daq_config)))
    assert json.loads(from_env.stdout) == {sim_daqdata.target: True}
    assert f"servers from DAQ_CFG={daq_config}\n" in from_env.stderr
    from_config = daq("--config", str(config), "hosts")
    assert json.loads(from_config.stdout) == {dead: False}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "observatory:\n  daq_nodes:\n    - {ip_addr: '  '}\n",
            ":3: observatory.daq_nodes[0].ip_addr: ip_addr is empty; write the node's host name",
        ),
        (
            "observatory:\n  daq_node:\n    - {ip_addr: a}\n",
            ":2: observatory.daq_node: unknown key; remove it (did you mean 'daq_nodes'?)",
        ),
        (
            "observatory:\n  daq_nodes: [{ip_addr: a}]\n  port_forwarding:\n"
            "    a: {status: true}\n",
            ":4: observatory.port_forwarding.a.gw_ip: status is true but gw_ip is missing; add",
        ),
    ],
)
def test_config_errors_name_the_field_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    config = write_config(tmp_path, text)
    result = daq("--config", str(config), "ping")
    assert result.returncode == 2, result.stderr
    assert "error: invalid configuration (1 problem):" in result.stderr
    assert f"{config}{message}" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_servers_anywhere_names_all_three_ways(tmp_path: Path) -> None:
    config = write_config(tmp_path, "observatory:\n  head_node_ip_addr: 10.0.0.3\n")
    result = daq("--config", str(config), "ping")
    assert result.returncode == 2
    assert (
        "no DaqData servers given: use --host HOST[:PORT] (repeatable), --daq-config "
        "daq_config.json (or set DAQ_CFG), or list the nodes under observatory.daq_nodes in the "
        f"config file (--config FILE; read {config})"
    ) in result.stderr
    missing = daq("ping", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert f"{tmp_path / 'nope.yaml'}: file not found" in missing.stderr
    net_alone = daq("--config", str(config), "--net-config", "network_config.json", "ping")
    assert net_alone.returncode == 2
    assert "--net-config needs --daq-config" in net_alone.stderr
