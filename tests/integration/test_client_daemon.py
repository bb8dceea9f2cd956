"""Both clients against live `panoseti-daqdata` daemons fed by their uds simulator.

Each daemon runs as a subprocess on an ephemeral loopback port with its Hashpipe sockets and
simulator files under the test's tmp dir; the simulator restamps frames to "now", so parsed White
Rabbit times must be valid and current.
"""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from panoseti_appliance import pff
from panoseti_appliance.daqdata.client import AioDaqDataClient, DaqDataClient
from panoseti_appliance.daqdata.sim.upload import pano_image
from panoseti_appliance.products import PH256
from tests.daemons import Daemon, free_tcp_port, rpc_details, start_daemon

PH_FILE = (
    Path(__file__).parents[1]
    / "data"
    / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"
)
WAIT = 60.0


def daqdata_settings(
    workdir: Path, port: int, modules: list[int], boot_sim: bool, **daqdata: Any
) -> dict[str, Any]:
    """Daemon settings: loopback port + unix socket; the uds simulator of `modules`, at boot
    when `boot_sim` (else hp_io starts with the Hashpipe sockets only)."""
    workdir.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "daqdata": {
            "listen": [f"127.0.0.1:{port}", f"unix://{workdir}/d.sock"],
            "hashpipe": {"socket_template": f"{workdir}/hp.{{dp}}.sock"},
            "simulator": {
                "mode": "uds",
                "module_ids": modules,
                "update_interval_seconds": 0.02,
                "sim_data_dir": str(workdir / "sim"),
            },
            **daqdata,
        },
        "hp_io": {
            "data_dir": str(workdir),
            "update_interval_seconds": 0.01,
            "simulate_daq": boot_sim,
        },
    }
    return settings


def start_daqdata(
    workdir: Path,
    modules: list[int],
    *,
    boot_sim: bool = True,
    port: int | None = None,
    **daqdata: Any,
) -> Daemon:
    port = port or free_tcp_port()
    settings = daqdata_settings(workdir, port, modules, boot_sim, **daqdata)
    return start_daemon("panoseti-daqdata", workdir, settings, f"127.0.0.1:{port}")


@pytest.fixture
def daemons() -> Any:
    started: list[Daemon] = []

    def start(workdir: Path, modules: list[int], **kwargs: Any) -> Daemon:
        daemon = start_daqdata(workdir, modules, **kwargs)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def assert_live_image(image: dict[str, Any]) -> None:
    """A simulator image restamped to now: valid WR time within a minute of the host clock."""
    header = image["header"]
    assert header["wr_clock_desync"] is False
    assert abs(header["wr_unix_timestamp"] - Decimal(time.time())) < 60
    assert abs(header["wr_unix_timestamp"] - header["pkt_unix_timestamp"]) < 1
    expected = np.int16 if image["type"] == "PULSE_HEIGHT" else np.uint16
    assert image["image_array"].dtype == expected


def test_merged_stream_survives_a_host_restart(tmp_path: Path, daemons: Any) -> None:
    a = daemons(tmp_path / "a", [1])
    b_port = free_tcp_port()
    b = start_daqdata(tmp_path / "b", [2], port=b_port)
    stop = threading.Event()
    phase = "both"
    seen: dict[str, set[int]] = {"both": set(), "a-only": set(), "resumed": set()}
    a_only_count = 0
    with DaqDataClient(hosts=[a.target, b.target]) as client:
        deadline = time.monotonic() + 3 * WAIT
        for image in client.stream_images(None, True, True, 0, stop_event=stop, reconnect=True):
            assert time.monotonic() < deadline, f"stuck in phase {phase}: {seen}"
            assert_live_image(image)
            seen[phase].add(image["module_id"])
            if phase == "both" and seen["both"] == {1, 2}:
                b.stop()
                phase = "a-only"
            elif phase == "a-only":
                a_only_count += 1
                if a_only_count == 20:
                    code, _details = client.last_stream_status[b.target]
                    assert code is grpc.StatusCode.UNAVAILABLE
                    b = daemons(tmp_path / "b2", [2], port=b_port)
                    phase = "resumed"
            elif phase == "resumed" and 2 in seen["resumed"]:
                stop.set()
    assert seen["a-only"] <= {1, 2}
    assert 1 in seen["a-only"]
    assert seen["resumed"] >= {2}


def test_admission_errors_surface_on_first_next(tmp_path: Path, daemons: Any) -> None:
    idle = daemons(tmp_path / "idle", [1], boot_sim=False, init_from_default=False)
    with DaqDataClient(hosts=[idle.target]) as client:
        stream = client.stream_images(None, True, True, 0)
        with pytest.raises(grpc.RpcError) as info:
            next(stream)
        assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert info.value.details() == "hp_io task is not valid."
        with pytest.raises(grpc.RpcError) as info:
            next(client.stream_images(None, False, False, 0))
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_init_sim_then_stream_and_init_errors(tmp_path: Path, daemons: Any) -> None:
    daemon = daemons(tmp_path / "d", [5, 6], boot_sim=False)
    stop = threading.Event()
    with DaqDataClient(hosts=[daemon.target]) as client:
        assert client.init_sim(None, {"update_interval_seconds": 0.01, "force": True})
        modules: set[int] = set()
        for image in client.stream_images(None, True, True, 0, stop_event=stop):
            assert_live_image(image)
            modules.add(image["module_id"])
            if modules == {5, 6}:
                stop.set()
        missing = {"data_dir": str(tmp_path / "missing"), "update_interval_seconds": 0.1}
        with pytest.raises(grpc.RpcError) as info:
            client.init_hp_io(None, {**missing, "force": True})
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "does not exist" in rpc_details(info.value)


def test_upload_images_then_stream_them_back(tmp_path: Path, daemons: Any) -> None:
    daemon = daemons(tmp_path / "u", [1], boot_sim=False)
    frames = list(pff.iter_frames(PH_FILE))
    images = [pano_image(77, PH256, f.header, f.pixels, f.index) for f in frames]
    with DaqDataClient(hosts=[daemon.target]) as client:
        client.upload_images(None, iter(images))
        stream = client.stream_images(None, False, True, 0, module_ids=[77], timeout=WAIT)
        image = next(stream)
        stream.close()
    newest = frames[-1]
    assert image["module_id"] == 77
    assert image["frame_number"] == newest.index
    assert np.array_equal(image["image_array"], np.frombuffer(newest.pixels, "<i2").reshape(16, 16))
    assert image["header"]["wr_clock_desync"] is True  # the real recording is desynchronised


def test_reflect_services_on_both_clients(tmp_path: Path, daemons: Any) -> None:
    daemon = daemons(tmp_path / "r", [1], boot_sim=False)
    method = "rpc StreamImages(daqdata.StreamImagesRequest) returns (stream daqdata.StreamImagesResponse)"
    with DaqDataClient(hosts=[daemon.target]) as client:
        text = client.reflect_services()
    assert method in text
    assert "grpc.health.v1.Health" in text

    async def aio() -> str:
        async with AioDaqDataClient(hosts=[daemon.target]) as aclient:
            return await aclient.reflect_services()

    assert method in asyncio.run(aio())


async def test_aio_stream_with_stop_event(tmp_path: Path) -> None:
    daemon = await asyncio.to_thread(start_daqdata, tmp_path / "aio", [3, 4])
    try:
        stop = asyncio.Event()
        modules: set[int] = set()
        async with AioDaqDataClient(hosts=[daemon.target]) as client:
            stream = await client.stream_images(None, True, True, 0, stop_event=stop)
            async for image in stream:
                assert_live_image(image)
                modules.add(image["module_id"])
                if modules == {3, 4}:
                    stop.set()
    finally:
        await asyncio.to_thread(daemon.stop)
    assert modules == {3, 4}
