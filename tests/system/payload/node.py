"""What scenarios on a node share: a Hashpipe-like feed, gRPC calls to the daemons, the journal.

Runs inside the container or VM with the node's venv python (grpc and panoseti_appliance).
The feed uses the appliance's own Hashpipe emulator (daqdata.sim.hashpipe): one non-blocking
sendmsg per frame, EAGAIN drops the frame, a short write tears it, EPIPE reconnects, exactly
Hashpipe's snapshot producer; its counters say what the producer lost.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2

from panoseti_appliance import pff
from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from panoseti_appliance.daqdata.sim.hashpipe import HashpipeEmitter
from panoseti_appliance.grpcstubs import health_stub
from panoseti_appliance.products import by_name

SERVICE = "panoseti-daqdata.service"
SOCKET = "panoseti-daqdata.socket"
DAQ_UNIX = "unix:///run/panoseti/daqdata.sock"
HASHPIPE_TEMPLATE = "/tmp/hashpipe_grpc.dp_{dp}.sock"
PRODUCTS = ("img8", "img16", "ph256", "ph1024")


def header(dp: str, index: int) -> dict[str, Any]:
    """Header fields of frame `index`: pkt_num = index, host and White Rabbit time of now."""
    now = time.time_ns()
    tv_sec, rest = divmod(now, 1_000_000_000)
    one = {
        "pkt_num": index % 2**32,
        "pkt_tai": (tv_sec + pff.TAI_UTC_OFFSET_S) % 1024,
        "pkt_nsec": rest // 1000 * 1000,
        "tv_sec": tv_sec,
        "tv_usec": rest // 1000,
    }
    if dp.startswith("ph256"):
        return {"quabo_num": 0, **one}
    return {f"quabo_{i}": dict(one) for i in range(4)}


class Feed:
    """Hashpipe sending every product in `products` for `module` at `rate_hz`, on a thread."""

    def __init__(self, products: list[str], rate_hz: float, module: int = 7) -> None:
        self.products = [by_name(p) for p in products]
        self.module = module
        self.period = 1.0 / rate_hz
        self.emitter = HashpipeEmitter([p.name for p in self.products], HASHPIPE_TEMPLATE)
        self.index = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Feed:
        self._thread.start()
        return self

    def _run(self) -> None:
        pixels = {p.name: bytes(p.bytes_per_image) for p in self.products}
        conns = {p.name: self.emitter._conns[p.name] for p in self.products}
        next_at = time.monotonic()
        while not self._stop.is_set():
            for dp in self.products:
                raw = pff.format_header(dp, header(dp.name, self.index), layout="socket")
                self.emitter.send(conns[dp.name], dp, self.module, raw, pixels[dp.name])
            self.index += 1
            next_at += self.period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def counts(self, dp: str) -> dict[str, int]:
        return self.emitter.stats.snapshot().get(dp, {})

    def stop(self) -> dict[str, dict[str, int]]:
        """Stop sending and close the connections; the counters per product."""
        self._stop.set()
        self._thread.join(30)
        for conn in self.emitter._conns.values():
            conn.close()
        return self.emitter.stats.snapshot()


def ping(target: str = DAQ_UNIX, timeout: float = 2.0, wait: bool = False) -> str | None:
    """None if DaqData answers Ping, else the error."""
    try:
        with grpc.insecure_channel(target) as channel:
            pb_grpc.DaqDataStub(channel).Ping(
                empty_pb2.Empty(), timeout=timeout, wait_for_ready=wait
            )
    except grpc.RpcError as exc:
        return f"{exc.code()}: {exc.details()}"
    return None


def health(service: str = "", target: str = DAQ_UNIX) -> str:
    with grpc.insecure_channel(target) as channel:
        reply = health_stub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def images(count: int, target: str = DAQ_UNIX, timeout: float = 20.0) -> list[pb.PanoImage]:
    """The first `count` images of a StreamImages call (movie and pulse-height, every module)."""
    request = pb.StreamImagesRequest(
        stream_movie_data=True, stream_pulse_height_data=True, update_interval_seconds=0.01
    )
    got: list[pb.PanoImage] = []
    with grpc.insecure_channel(target) as channel:
        call = pb_grpc.DaqDataStub(channel).StreamImages(request, timeout=timeout)
        for response in call:
            got.append(response.pano_image)
            if len(got) >= count:
                call.cancel()
                break
    return got


def pkt_num(image: pb.PanoImage) -> int:
    fields = image.header.fields
    if "pkt_num" in fields:
        return int(fields["pkt_num"].number_value)
    return int(fields["quabo_0"].struct_value.fields["pkt_num"].number_value)


def journal(*matches: str) -> list[dict[str, Any]]:
    """Journal entries (`journalctl -o json`) matching every FIELD=value in `matches`."""
    out = subprocess.run(
        ["journalctl", "--no-pager", "-o", "json", *matches],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def messages(*matches: str) -> Iterator[str]:
    for entry in journal(*matches):
        value = entry.get("MESSAGE")
        yield value if isinstance(value, str) else str(value)
