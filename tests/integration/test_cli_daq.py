"""Every `panoseti daq` subcommand as a subprocess against a live daemon (spec daqdata.md §F)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemons import Daemon, free_tcp_port
from tests.integration.test_client_daemon import start_daqdata
from tests.unit.test_plot import assert_png_looks_live

PANOSETI = str(Path(sys.executable).parent / "panoseti")
TIMEOUT = 90.0
LINE = re.compile(
    r"^127\.0\.0\.1:\d+ module=(1|254) (img16|ph256) frame=\d+ wr \S+Z min=-?\d+ max=-?\d+$"
)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = start_daqdata(tmp_path_factory.mktemp("cli"), [1, 254])
    yield running
    running.stop()


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
        env=env,
    )


def test_ping_hosts_reflect(daemon: Daemon) -> None:
    ping = daq("ping", target=daemon.target)
    assert ping.returncode == 0, ping.stderr
    assert ping.stdout.strip() == f"{daemon.target}: ok"
    hosts = daq("hosts", target=daemon.target)
    assert json.loads(hosts.stdout) == {daemon.target: True}
    reflect = daq("reflect", target=daemon.target)
    assert reflect.returncode == 0, reflect.stderr
    assert (
        "rpc InitHpIo(daqdata.InitHpIoRequest) returns (daqdata.InitHpIoResponse)" in reflect.stdout
    )


def test_ping_with_one_host_down(daemon: Daemon) -> None:
    down = f"127.0.0.1:{free_tcp_port()}"
    result = daq("--host", down, "ping", target=daemon.target)
    assert result.returncode == 1
    assert f"{down}: no answer" in result.stdout and f"{daemon.target}: ok" in result.stdout


def test_init_and_init_sim(daemon: Daemon, tmp_path: Path) -> None:
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
    init = daq("init", str(cfg), target=daemon.target)
    assert init.returncode == 0, init.stderr
    assert f"InitHpIo succeeded on {daemon.target}" in init.stdout
    sim = daq("init-sim", "--cfg", str(cfg), target=daemon.target)
    assert sim.returncode == 0, sim.stderr


def test_stream_lines_and_json(daemon: Daemon) -> None:
    lines = daq("stream", "--count", "6", "--refresh-period", "0", target=daemon.target)
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
        target=daemon.target,
    )
    records = [json.loads(line) for line in js.stdout.splitlines()]
    assert len(records) == 3
    for record in records:
        assert (record["module_id"], record["dp"], record["type"]) == (254, "ph256", "PULSE_HEIGHT")
        assert record["wr_clock_desync"] is False
        assert re.fullmatch(r"\d{10}\.\d{9}", record["wr_unix_timestamp"])
        assert record["header"]["quabo_num"] in range(4)
        assert record["min"] <= record["max"]


def test_view_and_phdist_render_pngs(daemon: Daemon, tmp_path: Path) -> None:
    view = daq(
        "view",
        "--png",
        str(tmp_path / "v.png"),
        "--duration",
        "2",
        "--refresh-period",
        "0.2",
        target=daemon.target,
    )
    assert view.returncode == 0, view.stderr
    assert f"wrote {tmp_path / 'v.png'}" in view.stdout
    assert_png_looks_live(tmp_path / "v.png")
    phdist = daq(
        "phdist",
        "--png",
        str(tmp_path / "p.png"),
        "--duration",
        "2",
        "--durations",
        "1",
        "10",
        target=daemon.target,
    )
    assert phdist.returncode == 0, phdist.stderr
    assert_png_looks_live(tmp_path / "p.png")


def test_speed(daemon: Daemon) -> None:
    result = daq("speed", "--duration", "2", target=daemon.target)
    assert result.returncode == 0, result.stderr
    rates = re.findall(r"^(\d+) pkts / ([\d.]+)s = ([\d.]+) \(pkts/s\)$", result.stdout, re.M)
    assert rates and all(int(n) > 0 for n, _, _ in rates)
    assert re.search(r"^\d+ images in [\d.]+ s = [\d.]+ images/s$", result.stdout, re.M)


def test_sigint_ends_a_stream_cleanly(daemon: Daemon) -> None:
    proc = subprocess.Popen(
        [PANOSETI, "daq", "--host", daemon.target, "stream", "--refresh-period", "0.1"],
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
        (["ping"], 2, "no DaqData servers given: use --host"),
        (
            ["--daq-config", "/nonexistent/daq_config.json", "hosts"],
            2,
            "daq_config_path=/nonexistent/daq_config.json does not exist",
        ),
        (
            ["--host", "127.0.0.1:1", "stream", "--count", "1"],
            1,
            "no DaqData server answered Ping: tried 127.0.0.1:1",
        ),
        (
            ["--host", "127.0.0.1:1", "init", "/nonexistent.json"],
            2,
            "hp_io config /nonexistent.json does not exist",
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
    assert "does not have an 'ip_addr' key" in result.stderr


def test_view_without_display_or_png_says_how_to_render(daemon: Daemon) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    for command in ("view", "phdist"):
        result = daq(command, "--duration", "1", target=daemon.target, env=env)
        assert result.returncode == 2
        assert "no display for a window: render headless with --png OUT" in result.stderr


def test_log_level_after_daq_turns_on_debug_logging(daemon: Daemon) -> None:
    quiet = daq("--log-level", "warning", "ping", target=daemon.target)
    debug = daq("ping", "--log-level", "debug", "--host", f"127.0.0.1:{free_tcp_port()}")
    assert quiet.returncode == 0 and "DEBUG" not in quiet.stderr
    assert debug.returncode == 1 and "DEBUG panoseti_appliance.daqdata.client" in debug.stderr
