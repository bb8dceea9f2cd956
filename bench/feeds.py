"""What goes into the daemon: Hashpipe socket frames and UploadImages requests.

Both producers run in processes of their own (bench/loads.py). The Hashpipe producer writes
pre-built frames with blocking writes, flat out or paced to a rate per data product. The uploader
keeps one UploadImages call open for the whole run; flat out it sends a small cycle of requests
serialized once (so the producer does as little as possible per image), paced it numbers every
image (`frame_number`) and remembers when it sent it, so readers can measure latency. Images
are the bundled sample run's (real ph256 of module 254, the generated img16 movie), with their
PFF headers.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import grpc
from google.protobuf import empty_pb2

from bench.loads import CHANNEL_OPTIONS, Gate
from panoseti_appliance import pff, sample_data
from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance.daqdata.client.rpc import batch_request
from panoseti_appliance.daqdata.sim.upload import pano_image
from panoseti_appliance.products import by_name

HEADER_END = b"\n\n*"
UPLOAD_METHOD = "/daqdata.DaqData/UploadImages"
#: Distinct requests a flat-out uploader cycles through.
CYCLE = 16
#: A flat-out uploader looks at its stop event once per this many requests (the check costs
#: a lock, more than sending a pre-serialized request).
STOP_CHECK_EVERY = 64


# ---- Hashpipe sockets -------------------------------------------------------------------------


def hashpipe_header(dp: str, module: int) -> bytes:
    """A Hashpipe-style JSON header: one quabo for pulse height, four for movie products."""
    one = {
        "pkt_num": module,
        "pkt_tai": 500,
        "pkt_nsec": 1,
        "tv_sec": int(time.time()),
        "tv_usec": 1,
    }
    fields: dict[str, Any] = (
        {"quabo_num": 0, **one} if dp == "ph256" else {f"quabo_{i}": one for i in range(4)}
    )
    return json.dumps(fields).encode()


def hashpipe_frames(dp: str, modules: int) -> bytes:
    """One socket frame per module (modules 0..modules-1), concatenated: be16 id, header,
    marker, pixels."""
    product = by_name(dp)
    out = bytearray()
    for module in range(modules):
        pixels = bytes((module + i) % 251 for i in range(product.bytes_per_image))
        out += module.to_bytes(2, "big") + hashpipe_header(dp, module) + HEADER_END + pixels
    return bytes(out)


def produce_hashpipe(
    paths: Mapping[str, str], modules: int, rate: float, gate: Gate, result: Any
) -> None:
    """Write every module's frame of each product in turn, blocking, from `go` until `stop`;
    report the frames written per product. `rate` > 0 paces the writes to about that many frames/s
    per product; 0 writes flat out."""
    socks = {}
    for dp, path in paths.items():
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        socks[dp] = sock
    batches = {dp: hashpipe_frames(dp, modules) for dp in paths}
    sent = dict.fromkeys(paths, 0)
    gate.ready.set()
    gate.go.wait()
    start = time.monotonic()
    while not gate.stop.is_set():
        for dp, sock in socks.items():
            sock.sendall(batches[dp])
            sent[dp] += modules
        if rate > 0:
            ahead = start + max(sent.values()) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    for sock in socks.values():
        sock.close()
    result.put(sent)


# ---- UploadImages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadPlan:
    """What one uploader process sends: every (module, product) in turn, `per_request` images per
    UploadImageRequest (the first in pano_image, the others in more_images), at `rate` images/s
    (0: flat out); `raw` puts the pixels in pixel_data (RAW) instead of image_array; `stamp`
    numbers the images and reports when each was sent."""

    modules: tuple[int, ...] = (1,)
    products: tuple[str, ...] = ("img16",)
    per_request: int = 1
    rate: float = 0.0
    raw: bool = False
    stamp: bool = False

    def describe(self) -> str:
        form = "RAW" if self.raw else "PACKED"
        per = "1 image" if self.per_request == 1 else f"{self.per_request} images"
        return f"{per} per message, {form}"


@cache
def sample_frames(dp: str) -> list[pff.PffFrame]:
    """The bundled sample run's frames of one product."""
    return list(pff.iter_frames(sample_data.sample_files()[dp]))


def sample_image(module: int, dp: str, index: int, raw: bool) -> pb.PanoImage:
    """Frame `index` (cyclic) of the bundled sample of `dp`, as `module`'s PanoImage."""
    frames = sample_frames(dp)
    frame = frames[index % len(frames)]
    image = pano_image(module, frame.dp, frame.header, frame.pixels, index)
    if raw:
        del image.image_array[:]
        image.pixel_data = frame.pixels
        image.pixel_encoding = pb.PanoImage.RAW
    return image


def raw_upload(channel: grpc.aio.Channel) -> grpc.aio.StreamUnaryMultiCallable[bytes, bytes]:
    """UploadImages taking serialized requests."""
    call: grpc.aio.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(
        UPLOAD_METHOD, request_serializer=None, response_deserializer=None
    )
    return call


class _Uploader:
    """One uploader process's requests; counts images into its shared counter slot."""

    def __init__(self, plan: UploadPlan, gate: Gate, counter: Any, slot: int) -> None:
        self.plan = plan
        self.gate = gate
        self.counter = counter
        self.slot = slot
        self.keys = [(m, dp) for m in plan.modules for dp in plan.products]
        self.templates = {
            (m, dp): [sample_image(m, dp, i, plan.raw) for i in range(len(sample_frames(dp)))]
            for m, dp in self.keys
        }
        self.sent = 0
        #: (module, PanoImage type, frame_number, monotonic ns when sent), stamped plans only.
        self.stamps: list[tuple[int, int, int, int]] = []

    def image(self, n: int) -> pb.PanoImage:
        """Image number n of this uploader: key n mod keys, its sample frame, frame_number n."""
        module, dp = self.keys[n % len(self.keys)]
        frames = self.templates[(module, dp)]
        image = pb.PanoImage()
        image.CopyFrom(frames[(n // len(self.keys)) % len(frames)])
        image.frame_number = n & 0xFFFFFFFF
        return image

    def cycle(self) -> list[bytes]:
        per = self.plan.per_request
        return [
            batch_request([self.image(k * per + j) for j in range(per)]).SerializeToString()
            for k in range(CYCLE)
        ]

    async def flat_out(self) -> AsyncIterator[bytes]:
        cycle = self.cycle()
        per = self.plan.per_request
        counter, slot, stop = self.counter, self.slot, self.gate.stop
        k = 0
        while k % STOP_CHECK_EVERY or not stop.is_set():
            yield cycle[k % CYCLE]
            k += 1
            counter[slot] += per
        self.sent = k * per

    async def paced(self) -> AsyncIterator[bytes]:
        plan = self.plan
        start = time.monotonic()
        n = 0
        while not self.gate.stop.is_set():
            ahead = start + n / plan.rate - time.monotonic() if plan.rate > 0 else 0.0
            if ahead > 0:
                await asyncio.sleep(ahead)
            images = [self.image(n + j) for j in range(plan.per_request)]
            data = batch_request(images).SerializeToString()
            if plan.stamp:
                now = time.monotonic_ns()
                self.stamps.extend((i.module_id, i.type, i.frame_number, now) for i in images)
            yield data
            n += plan.per_request
            self.counter[self.slot] += plan.per_request
        self.sent = n


def upload(target: str, plan: UploadPlan, counter: Any, slot: int, gate: Gate, result: Any) -> None:
    """One UploadImages call from `go` until `stop` (a process of its own); reports images sent,
    the send stamps of a stamped plan and the call's error, if any."""
    uploader = _Uploader(plan, gate, counter, slot)

    async def main() -> str | None:
        async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
            await channel.channel_ready()
            call = raw_upload(channel)
            gate.ready.set()
            await asyncio.to_thread(gate.go.wait)
            flat = plan.rate <= 0 and not plan.stamp
            try:
                await call(uploader.flat_out() if flat else uploader.paced())
            except grpc.aio.AioRpcError as exc:
                return f"{exc.code().name}: {exc.details()}"
            return None

    error = asyncio.run(main())
    result.put({"sent": uploader.sent, "stamps": uploader.stamps, "error": error})


def upload_once(target: str, requests: list[pb.UploadImageRequest], timeout: float = 10.0) -> None:
    """One short UploadImages call with these requests (probes, the encodings' frames)."""
    with grpc.insecure_channel(target) as channel:
        call = channel.stream_unary(
            UPLOAD_METHOD,
            request_serializer=pb.UploadImageRequest.SerializeToString,
            response_deserializer=empty_pb2.Empty.FromString,
        )
        call(iter(requests), timeout=timeout)


@dataclass(frozen=True)
class HashpipeLoad:
    """A Hashpipe producer: `modules` modules of each product, at `rate` frames/s per product
    (0: flat out)."""

    products: tuple[str, ...] = ("img16", "ph256")
    modules: int = 8
    rate: float = 0.0

    def describe(self) -> str:
        pace = "flat out" if self.rate <= 0 else f"{self.rate / self.modules:g} Hz per module"
        return f"Hashpipe sockets, {self.modules} modules x {'+'.join(self.products)}, {pace}"
