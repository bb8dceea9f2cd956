"""Each daemon's Prometheus endpoint, scraped over HTTP from real daemons (docs/operations.md)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from panoseti_appliance.ublox.emulator import F9tEmulator
from tests.daemons import free_tcp_port
from tests.integration.test_client_daemon import start_daqdata
from tests.integration.test_ublox_init import UID, ubloxcontrol

WAIT = 60.0


def scrape(port: int) -> dict[str, list[Sample]]:
    """Every sample on the endpoint, by metric sample name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def until(port: int, ok: Callable[[dict[str, list[Sample]]], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not ok(samples := scrape(port)):
        assert time.monotonic() < deadline, f"{what}: {samples}"
        time.sleep(0.2)


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float | None:
    for sample in samples.get(name, []):
        if all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return None


@pytest.fixture
def daqdata_metrics(tmp_path: Path) -> Iterator[tuple[int, str]]:
    port = free_tcp_port()
    daemon = start_daqdata(tmp_path, [1, 254], metrics_listen=f"127.0.0.1:{port}")
    try:
        yield port, daemon.target
    finally:
        daemon.stop()


def test_daqdata_metrics_count_frames_streams_and_state(
    daqdata_metrics: tuple[int, str],
) -> None:
    port, target = daqdata_metrics
    until(
        port,
        lambda s: (value(s, "panoseti_daqdata_frames_published_total", module="254") or 0) > 0,
        "module 254 published",
    )
    samples = scrape(port)
    assert value(samples, "panoseti_daqdata_hp_io_state", panoseti_daqdata_hp_io_state="RUNNING")
    assert value(samples, "panoseti_daqdata_streams_open") == 0
    assert (value(samples, "process_open_fds") or 0) > 0
    assert (value(samples, "process_resident_memory_bytes") or 0) > 0
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DaqDataStub(channel)
        stream = stub.StreamImages(
            pb.StreamImagesRequest(
                stream_movie_data=True, stream_pulse_height_data=True, update_interval_seconds=0.05
            ),
            timeout=WAIT,
        )
        for _ in range(3):
            next(stream)
        samples = scrape(port)
        assert value(samples, "panoseti_daqdata_streams_open") == 1
        (sent,) = samples["panoseti_daqdata_stream_responses_sent_total"]
        assert sent.value >= 3
        stream.cancel()
    until(port, lambda s: value(s, "panoseti_daqdata_streams_open") == 0, "stream closed")


def test_ublox_metrics_show_the_receiver_and_its_timing(tmp_path: Path) -> None:
    port = free_tcp_port()
    with F9tEmulator(epoch_s=0.1, link=tmp_path / "ublox-f9t") as emulator:
        ublox = {
            "init_on_start": True,
            "apply_to_layers": ["RAM"],
            "cfg_key_settings": [{"key": "CFG_MSGOUT_UBX_TIM_TP_USB", "value": 1}],
            "chips": [{"uid": UID, "device": emulator.device_path}],
            "metrics_listen": f"127.0.0.1:{port}",
        }
        with ubloxcontrol(tmp_path / "daemon", ublox):
            until(
                port,
                lambda s: (
                    value(s, "panoseti_ublox_receiver_up") == 1
                    and value(s, "panoseti_ublox_qerr_seconds") is not None
                ),
                "receiver up with TIM-TP",
            )
            first = value(scrape(port), "panoseti_ublox_messages_received_total") or 0
            until(
                port,
                lambda s: (value(s, "panoseti_ublox_messages_received_total") or 0) > first,
                "messages flowing",
            )
            qerr = value(scrape(port), "panoseti_ublox_qerr_seconds")
            assert qerr is not None
            assert abs(qerr) < 1e-6  # picoseconds scaled to seconds
            emulator.unplug()
            until(port, lambda s: value(s, "panoseti_ublox_receiver_up") == 0, "receiver down")


def test_a_busy_metrics_port_is_one_line_and_exit_69(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        config = tmp_path / "d.yaml"
        config.write_text(
            f"daqdata:\n  listen: ['127.0.0.1:{free_tcp_port()}']\n"
            f"  metrics_listen: '127.0.0.1:{taken}'\n  init_from_default: false\n"
            f"  hashpipe: {{enabled: false}}\n"
        )
        exe = Path(sys.executable).parent / "panoseti-daqdata"
        done = subprocess.run(
            [str(exe), "--config", str(config)], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 69, done.stderr
    assert (
        f"daqdata.metrics_listen: cannot listen on 127.0.0.1:{taken}: port {taken} is in use"
        in (done.stderr)
    )
    assert "Traceback" not in done.stderr
