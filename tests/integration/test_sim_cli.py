"""`panoseti sim` as a real process: each delivery path, signals, duration and bad input."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import grpc
import pytest

from panoseti_appliance._proto import daq_data_pb2_grpc
from panoseti_appliance.cli.main import build_parser, main
from panoseti_appliance.cli.sim import build_settings
from tests.daemons import clean_environ
from tests.producers import until
from tests.unit.test_simulate_rpc import Uploads
from tests.unit.test_simulate_uds import Listener

PANOSETI = str(Path(sys.executable).parent / "panoseti")
WAIT = 60.0


async def sim_process(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    config = tmp_path / "empty.yaml"
    config.write_text("")
    return await asyncio.create_subprocess_exec(
        PANOSETI,
        "sim",
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_environ(),
    )


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(), timeout=WAIT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_uds_frames_reach_the_sockets_and_the_process_exits(tmp_path: Path) -> None:
    lst = Listener(tmp_path, ("img16", "ph256"))
    lst.bind("img16")
    lst.bind("ph256")
    try:
        proc = await sim_process(
            tmp_path,
            "--mode",
            "uds",
            "--socket-template",
            lst.template,
            "--module-ids",
            "1",
            "254",
            "--rate",
            "0",
            "--frame-limit",
            "5",
        )
        rc, out, err = await finish(proc)
        assert rc == 0, err
        await until(lambda: all(len(f) == 10 for f in lst.frames.values()), "10 frames per dp")
    finally:
        await lst.close()
    assert f"simulating uds to {lst.template}: modules [1, 254]" in out
    assert "5 steps: img16 sent=10 connects=1 | ph256 sent=10 connects=1" in out
    assert {m for m, _, _ in lst.frames["ph256"]} == {1, 254}


async def test_filesystem_run_is_removed_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = await sim_process(
        tmp_path,
        "--mode",
        "filesystem_pipe",
        "--data-dir",
        str(data),
        "--module-ids",
        "3",
        "--interval",
        "0.05",
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=WAIT)
    assert line.decode().startswith(f"simulating filesystem_pipe to {data}")
    run = data / "module_3" / "obs_SIMULATE"
    assert (run / "read_status_2").exists()
    assert (run / "module_3.daq-active").exists()
    assert (run / "sim.dp_img16.module_3.seqno_0.pff").stat().st_size > 0
    proc.send_signal(signal.SIGTERM)
    rc, out, err = await finish(proc)
    assert rc == 0, err
    assert "stopped after" in out
    assert not data.exists()


async def test_rpc_with_duration_prints_status_lines(tmp_path: Path) -> None:
    servicer = Uploads()
    server = grpc.aio.server()
    daq_data_pb2_grpc.add_DaqDataServicer_to_server(servicer, server)
    server.add_insecure_port(f"unix://{tmp_path / 'd.sock'}")
    await server.start()
    try:
        proc = await sim_process(
            tmp_path,
            "--mode",
            "rpc",
            "--target",
            f"unix://{tmp_path / 'd.sock'}",
            "--interval",
            "0.02",
            "--duration",
            "1.5",
            "--status-interval",
            "0.2",
        )
        rc, out, err = await finish(proc)
    finally:
        await server.stop(None)
    assert rc == 0, err
    assert "] steps=" in out, out
    assert servicer.images
    assert {i.module_id for i in servicer.images} == {224}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--rate", "-1"), 2, "--rate must be >= 0"),
        (("--interval", "-0.5"), 2, "--interval must be >= 0 seconds"),
        (("--duration", "0"), 2, "--duration must be > 0"),
        (("--socket-template", "/tmp/x.sock"), 2, "must contain {{dp}}"),
        (("--module-ids", "70000"), 2, "70000 is not a module id"),
        (("--frame-limit", "-3"), 2, "--frame-limit must be >= 0"),
        (("--set", "daqdata.simulator.frames_per_pff=0"), 2, "frames_per_pff"),
        (("--movie", "{tmp}/none.pff"), 1, "movie source {tmp}/none.pff: no such file"),
        (("--interval", "1", "--rate", "2"), 2, "not allowed with argument"),
    ],
)
def test_bad_input_gets_a_clear_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    for name in [n for n in os.environ if n.startswith("PANOSETI_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "empty.yaml"
    config.write_text("")
    argv = ["sim", "--config", str(config), *(a.format(tmp=tmp_path) for a in args)]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        rc = int(exc.code or 0)
    assert rc == code
    assert message.format(tmp=tmp_path) in capsys.readouterr().err


def test_each_setting_flag_replaces_only_its_configured_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("PANOSETI_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "empty.yaml"
    config.write_text("")

    def simulator_settings(*flags: str) -> dict[str, object]:
        argv = ["sim", "--config", str(config), *flags]
        settings: dict[str, object] = build_settings(build_parser(argv).parse_args(argv))["sim"]
        return settings

    configured = simulator_settings()
    overridden = simulator_settings(
        *("--mode", "rpc", "--module-ids", "3", "4", "--data-dir", str(tmp_path / "runs")),
        *("--target", "unix:///x.sock", "--movie", "m.pff", "--ph", "p.pff"),
        *("--replay-timestamps", "--frame-limit", "7"),
    )
    assert {k: v for k, v in overridden.items() if v != configured[k]} == {
        "mode": "rpc",
        "module_ids": [3, 4],
        "sim_data_dir": tmp_path / "runs",
        "rpc_target": "unix:///x.sock",
        "movie_pff_path": Path("m.pff"),
        "ph_pff_path": Path("p.pff"),
        "replay_original_timestamps": True,
        "frame_limit": 7,
    }
