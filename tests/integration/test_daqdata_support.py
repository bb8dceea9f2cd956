"""Shared helpers of the DaqData daemon tests (no tests here).

`daqdata(tmp_path, ...)` runs the real `panoseti-daqdata` as a subprocess through
tests/daemons.py: empty config file, PANOSETI_* overrides, an ephemeral loopback port, the gRPC
unix socket and the Hashpipe sockets under tmp_path. The helpers below speak to it with the
generated stubs, as any original client would.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from panoseti_appliance.products import by_name
from panoseti_appliance.structs import struct_to_dict
from tests.daemons import Daemon, free_tcp_port, rpc_details, running_daemon
from tests.producers import HashpipeProducer, frame_fields

WAIT = 30.0


def deep_update(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


@dataclass
class DaqData:
    """A running daemon and where its pieces are."""

    daemon: Daemon
    tmp: Path
    port: int

    @property
    def target(self) -> str:
        return self.daemon.target

    def socket_path(self, dp: str) -> str:
        return str(self.tmp / f"hp_{dp}.sock")

    def stub(self) -> contextlib.AbstractContextManager[pb_grpc.DaqDataStub]:
        return _stub(self.target)

    def producer(self, dp: str) -> HashpipeProducer:
        return HashpipeProducer(self.socket_path(dp), dp)

    def log(self) -> str:
        return self.daemon.log()


@contextlib.contextmanager
def _stub(target: str) -> Iterator[pb_grpc.DaqDataStub]:
    with grpc.insecure_channel(target) as channel:
        yield pb_grpc.DaqDataStub(channel)


def settings_for(tmp: Path, port: int, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Daemon settings with every path under `tmp` and the given loopback port."""
    (tmp / "data").mkdir(parents=True, exist_ok=True)
    (tmp / "grpc").mkdir(exist_ok=True)  # the daemon never creates directories
    settings: dict[str, Any] = {
        "daqdata": {
            "listen": [f"127.0.0.1:{port}", f"unix://{tmp / 'grpc' / 'daqdata.sock'}"],
            "hashpipe": {"socket_template": str(tmp / "hp_{dp}.sock")},
            "simulator": {"sim_data_dir": str(tmp / "sim")},
        },
        "hp_io": {"data_dir": str(tmp / "data"), "update_interval_seconds": 0.01},
        "logging": {"level": "info", "target": "stderr"},
    }
    return deep_update(settings, extra or {})


@contextlib.contextmanager
def daqdata(
    tmp_path: Path,
    extra: Mapping[str, Any] | None = None,
    wait: bool = True,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[DaqData]:
    """The daemon running with `extra` settings merged in; SIGTERM and checked on exit."""
    port = free_tcp_port()
    settings = settings_for(tmp_path, port, extra)
    with running_daemon(
        "panoseti-daqdata",
        tmp_path,
        settings,
        f"127.0.0.1:{port}",
        wait=wait,
        extra_env=extra_env,
    ) as daemon:
        yield DaqData(daemon, tmp_path, port)


def until(check: Callable[[], Any], timeout: float = WAIT, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def socket_header(dp: str, index: int) -> bytes:
    """A socket-layout JSON header (compact JSON; the reader never assumes a length)."""
    return json.dumps(frame_fields(by_name(dp), index)).encode()


def send_frame(producer: HashpipeProducer, module: int) -> int:
    """Send one valid frame of `module`; returns its pkt_num (the producer's index)."""
    index = producer.next_index(module)
    producer.send(module, header=socket_header(producer.dp.name, index))
    return index


def pkt_num(image: pb.PanoImage) -> int:
    """The pkt_num of an image's header (top level for ph256, quabo_0 otherwise)."""
    header = struct_to_dict(image.header)
    if "quabo_0" in header:
        return int(header["quabo_0"]["pkt_num"])
    return int(header["pkt_num"])


def init_request(**kw: Any) -> pb.InitHpIoRequest:
    kw.setdefault("update_interval_seconds", 0.01)
    return pb.InitHpIoRequest(**kw)


def stream_request(**kw: Any) -> pb.StreamImagesRequest:
    kw.setdefault("stream_movie_data", True)
    kw.setdefault("stream_pulse_height_data", True)
    kw.setdefault("update_interval_seconds", 0.0)
    return pb.StreamImagesRequest(**kw)


def upload_images(n: int, module: int = 7) -> list[pb.UploadImageRequest]:
    """`n` valid ph256 upload requests of `module`; image i has frame_number i, pkt_num i."""
    images = []
    for i in range(n):
        image = pb.PanoImage(
            type=pb.PanoImage.Type.PULSE_HEIGHT,
            shape=[16, 16],
            bytes_per_pixel=2,
            image_array=[(i + j) % 65536 for j in range(256)],
            file="upload.pff",
            frame_number=i,
            module_id=module,
        )
        image.header.update({"quabo_num": 0, "pkt_num": i})
        images.append(pb.UploadImageRequest(pano_image=image))
    return images


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    """Run `call`, which must fail with an RpcError, and return that error."""
    try:
        call()
    except grpc.RpcError as err:
        return err
    raise AssertionError("the call succeeded; an error status was expected")


def upload(d: DaqData, requests: list[pb.UploadImageRequest], timeout: float = 30) -> None:
    """One UploadImages call of `requests` on a channel of its own."""
    with d.stub() as stub:
        stub.UploadImages(iter(requests), timeout=timeout)


def refused_upload(d: DaqData, requests: list[pb.UploadImageRequest]) -> str:
    """The details of an UploadImages call of `requests`, which must end INVALID_ARGUMENT."""
    err = rpc_error(lambda: upload(d, requests))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    return rpc_details(err)


#: Settings a daemon needs for `stalled_reader`: frequent counter lines in the log.
STALL_SETTINGS: dict[str, Any] = {
    "daqdata": {"stats_log_interval_seconds": 0.05},
    "logging": {"level": "debug"},
}


def _sent_counts(log: str) -> list[int]:
    return [int(m) for m in re.findall(r"counters: published=\d+ sent=(\d+)", log)]


def _writes_blocked(d: DaqData) -> bool:
    """The daemon's `sent` counter stood still over its last three counter lines."""
    counts = _sent_counts(d.log())
    return len(counts) >= 3 and counts[-1] == counts[-2] == counts[-3]


@contextlib.contextmanager
def stalled_reader(d: DaqData, modules: int = 400) -> Iterator[Iterator[pb.StreamImagesResponse]]:
    """A StreamImages call whose client reads one response and then nothing.

    The hub first holds an img16 frame of each of `modules` modules, so the stream's first
    tick has far more to send than the client's HTTP/2 window (kept small by disabling BDP
    probing) admits: the server's handler is then stuck in a write, the slow client a shutdown
    or forced re-init must still get past. The daemon must run with STALL_SETTINGS, whose
    counter lines show when its sends stop. Yields the call (read it to drain).
    """
    with d.producer("img16") as producer:
        producer.connect()
        for module in range(modules):
            send_frame(producer, module)
        last = modules - 1
        with d.stub() as stub:
            probe = stub.StreamImages(stream_request(stream_pulse_height_data=False), timeout=60)
            for response in probe:
                if response.pano_image.module_id == last:
                    break
            probe.cancel()
        with grpc.insecure_channel(d.target, options=[("grpc.http2.bdp_probe", 0)]) as channel:
            call = pb_grpc.DaqDataStub(channel).StreamImages(stream_request(), timeout=60)
            next(call)
            until(lambda: _writes_blocked(d), what="the stream's writes to block")
            try:
                yield call
            finally:
                call.cancel()


class Collector:
    """Reads one StreamImages call in a thread, so a test can act while waiting for images."""

    def __init__(self, d: DaqData, request: pb.StreamImagesRequest) -> None:
        self._channel = grpc.insecure_channel(d.target)
        self._call = pb_grpc.DaqDataStub(self._channel).StreamImages(request, timeout=120)
        self.images: list[pb.PanoImage] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(grpc.RpcError):
            for response in self._call:
                with self._lock:
                    self.images.append(response.pano_image)

    def wait_for(
        self,
        match: Callable[[pb.PanoImage], bool],
        what: str,
        act: Callable[[], None] | None = None,
    ) -> pb.PanoImage:
        """The first image matching `match`; `act()` runs between checks (e.g. keep writing)."""

        def found() -> pb.PanoImage | None:
            with self._lock:
                hit = next((img for img in self.images if match(img)), None)
            if hit is None and act is not None:
                act()
            return hit

        return until(found, what=what)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._call.cancel()
        self._thread.join(timeout=30)
        self._channel.close()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
