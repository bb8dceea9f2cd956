"""Every simulator mode end to end against the real `panoseti-daqdata` subprocess.

uds: a `panoseti sim` process feeds the daemon's Hashpipe sockets. filesystem_poll,
filesystem_pipe and rpc: InitHpIo(simulate_daq=true) starts the daemon's own simulator. Each
test streams images back with StreamImages and checks modules, products and a current, valid
White Rabbit time; the filesystem tests also check that a re-init removes the simulator's files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from panoseti_appliance import pff
from panoseti_appliance._proto import daq_data_pb2, daq_data_pb2_grpc
from tests.daemons import Daemon, free_tcp_port, start_daemon

PANOSETI = str(Path(sys.executable).parent / "panoseti")
WAIT = 60.0


def _header(image: daq_data_pb2.PanoImage) -> dict[str, Any]:
    def ints(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ints(v) for k, v in value.items()}
        return int(value) if isinstance(value, float) and value.is_integer() else value

    return dict(ints(json_format.MessageToDict(image.header)))


def collect(
    daemon: Daemon, want: set[tuple[int, str]], *, count: int = 1, timeout: float = WAIT
) -> list[daq_data_pb2.PanoImage]:
    """Stream until every (module, file-or-dp key) in `want` was seen `count` times."""
    request = daq_data_pb2.StreamImagesRequest(
        stream_movie_data=True, stream_pulse_height_data=True, update_interval_seconds=0
    )
    seen: dict[tuple[int, str], int] = {}
    images = []
    deadline = time.monotonic() + timeout
    with daemon.channel() as channel:
        stub = daq_data_pb2_grpc.DaqDataStub(channel)
        while True:
            call = stub.StreamImages(request, timeout=max(deadline - time.monotonic(), 0.1))
            try:
                for response in call:
                    image = response.pano_image
                    key = (image.module_id, _dp_of(image))
                    seen[key] = seen.get(key, 0) + 1
                    images.append(image)
                    if all(seen.get(k, 0) >= count for k in want):
                        call.cancel()
                        return images
            except grpc.RpcError as exc:
                # UNAVAILABLE while the daemon finishes configuring: subscribe again.
                if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise AssertionError(
                        f"stream ended: {exc.code()} {exc.details()}; saw {seen}"
                    ) from exc
            time.sleep(0.1)


def _dp_of(image: daq_data_pb2.PanoImage) -> str:
    from panoseti_appliance.products import by_layout

    return by_layout(image.type, image.shape, image.bytes_per_pixel).name


def assert_current_wr_time(image: daq_data_pb2.PanoImage, started_ns: int) -> None:
    wr = pff.header_wr_time(_header(image))
    assert not wr.desync, _header(image)
    assert wr.unix_ns is not None
    assert started_ns // 10**6 * 10**6 <= wr.unix_ns <= time.time_ns()
    assert wr.decimal > Decimal(0)


def init_hp_io(daemon: Daemon, **fields: Any) -> daq_data_pb2.InitHpIoResponse:
    request = daq_data_pb2.InitHpIoRequest(update_interval_seconds=0.05, force=True, **fields)
    with daemon.channel() as channel:
        response: daq_data_pb2.InitHpIoResponse = daq_data_pb2_grpc.DaqDataStub(channel).InitHpIo(
            request, timeout=WAIT
        )
        return response


def daemon_settings(tmp_path: Path, port: int, **simulator: Any) -> dict[str, Any]:
    (tmp_path / "data").mkdir(exist_ok=True)
    sim: dict[str, Any] = {
        "module_ids": [5, 254],
        "update_interval_seconds": 0.02,
        "sim_data_dir": str(tmp_path / "sim"),
    }
    sim.update(simulator)
    return {
        "daqdata": {
            "listen": [f"127.0.0.1:{port}", f"unix://{tmp_path / 'daq.sock'}"],
            "hashpipe": {"socket_template": str(tmp_path / "hp.{dp}.sock")},
            "simulator": sim,
        },
        "hp_io": {"data_dir": str(tmp_path / "data"), "update_interval_seconds": 0.05},
    }


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Daemon] = []

    def make(**kw: Any) -> Daemon:
        port = free_tcp_port()
        settings = daemon_settings(tmp_path, port, **kw.pop("simulator", {}))
        for section, values in kw.items():
            settings["daqdata"][section] = values
        daemon = start_daemon("panoseti-daqdata", tmp_path, settings, f"127.0.0.1:{port}")
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        daemon.stop()


def start_sim_process(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    """`panoseti sim --mode uds` feeding the test daemon's Hashpipe sockets, every 20 ms."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANOSETI_")}
    (tmp_path / "sim.yaml").write_text("")
    command = [PANOSETI, "sim", "--config", str(tmp_path / "sim.yaml"), "--mode", "uds"]
    command += ["--socket-template", str(tmp_path / "hp.{dp}.sock"), "--interval", "0.02"]
    return subprocess.Popen(
        [*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )


def test_uds_sim_process_feeds_the_hashpipe_sockets(tmp_path: Path, daemon_factory: Any) -> None:
    daemon = daemon_factory()
    started = time.time_ns()
    proc = start_sim_process(tmp_path, "--module-ids", "1", "254")
    try:
        images = collect(daemon, {(m, dp) for m in (1, 254) for dp in ("img16", "ph256")}, count=3)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err.decode()
    assert b"stopped after" in out
    for image in images:
        assert image.file == f"uds_{_dp_of(image)}"
        assert_current_wr_time(image, started)


def test_uds_sim_process_survives_a_daemon_restart(tmp_path: Path, daemon_factory: Any) -> None:
    daemon = daemon_factory()
    proc = start_sim_process(tmp_path, "--module-ids", "9", "--status-interval", "0")
    try:
        collect(daemon, {(9, "ph256")})
        daemon.stop()
        restarted = daemon_factory()
        started = time.time_ns()
        images = collect(restarted, {(9, "img16"), (9, "ph256")}, count=2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err.decode()
    # The emulator lost its connections with the first daemon and made new ones.
    assert b"connects=2" in out, out
    for image in images:
        assert_current_wr_time(image, started - 10**9)


@pytest.mark.parametrize("mode", ["filesystem_poll", "filesystem_pipe"])
def test_filesystem_sim_via_init_hp_io_and_cleanup_on_reinit(
    tmp_path: Path, daemon_factory: Any, mode: str
) -> None:
    daemon = daemon_factory(simulator={"mode": mode}, **{mode: {"enabled": True}})
    started = time.time_ns()
    response = init_hp_io(daemon, simulate_daq=True)
    assert response.success, response.error_message
    run = tmp_path / "sim" / "module_5" / "obs_SIMULATE"
    assert (run / "module_5.daq-active").exists()
    assert ((run / "read_status_2").exists()) == (mode == "filesystem_pipe")
    images = collect(daemon, {(m, dp) for m in (5, 254) for dp in ("img16", "ph256")}, count=2)
    for image in images:
        assert image.file.startswith(f"sim.dp_{_dp_of(image)}.module_{image.module_id}.seqno_")
        assert_current_wr_time(image, started)
    # Back to real data: the simulator stops and removes everything it created.
    response = init_hp_io(daemon, simulate_daq=False, data_dir=str(tmp_path / "data"))
    assert response.success, response.error_message
    assert not (tmp_path / "sim").exists(), list((tmp_path / "sim").rglob("*"))


def test_rpc_sim_via_init_hp_io(tmp_path: Path, daemon_factory: Any) -> None:
    daemon = daemon_factory(simulator={"mode": "rpc"})
    started = time.time_ns()
    response = init_hp_io(daemon, simulate_daq=True)
    assert response.success, response.error_message
    images = collect(daemon, {(m, dp) for m in (5, 254) for dp in ("img16", "ph256")}, count=2)
    for image in images:
        assert image.file == f"rpc_sim_{_dp_of(image)}.pff"
        assert_current_wr_time(image, started)
    assert max(i.frame_number for i in images) > 0


def test_uds_sim_via_init_hp_io(tmp_path: Path, daemon_factory: Any) -> None:
    daemon = daemon_factory(simulator={"mode": "uds"})
    response = init_hp_io(daemon, simulate_daq=True)
    assert response.success, response.error_message
    images = collect(daemon, {(m, dp) for m in (5, 254) for dp in ("img16", "ph256")})
    assert {i.file for i in images} <= {"uds_img16", "uds_ph256"}


def test_load_failure_is_reported_by_init_hp_io(tmp_path: Path, daemon_factory: Any) -> None:
    bad = tmp_path / "broken.dp_ph256.pff"
    bad.write_bytes(b'{ "quabo_num": 1 }\n\nX' + bytes(10))
    daemon = daemon_factory(simulator={"mode": "uds", "ph_pff_path": str(bad)})
    response = init_hp_io(daemon, simulate_daq=True)
    assert not response.success
    assert f"ph source {bad}" in response.error_message, response.error_message
