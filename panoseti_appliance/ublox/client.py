"""Clients of UbloxControl servers: `UbloxControlClient` (threads) and `AioUbloxControlClient`.

Both talk to one or more hosts (gRPC targets such as `node1:50052` or `unix:///run/panoseti/ublox.sock`),
keep the host label on every message, and keep a capture going across daemon restarts, device
re-plugs and re-initialisations: such an end of stream is reported as an ERROR entry and the
stream is re-opened with back-off. Everything else (bad pattern, unknown host, a receiver that
was never initialised) is raised.

`load_f9t_config` reads the original f9t_config JSON5 file and `chip_config` applies its merge
rule for one receiver (spec ublox.md §D).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import queue
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import json5
from google.protobuf.struct_pb2 import Struct

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance._proto import ublox_control_pb2_grpc as pb_grpc
from panoseti_appliance.ublox.parsed import error_response

log = logging.getLogger(__name__)

#: Stream ends after which a capture re-subscribes: daemon or device gone, re-initialised.
RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)


def backoff(attempt: int) -> float:
    """Seconds to wait before re-opening a stream after `attempt` consecutive failures."""
    return BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]


def load_f9t_config(path: str | Path) -> dict[str, Any]:
    """Read an f9t_config JSON5 file (comments and trailing commas allowed)."""
    try:
        data = json5.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"cannot read f9t config {path}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON5: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level must be an object")
    return data


def chip_config(file_cfg: dict[str, Any], uid: str) -> dict[str, Any]:
    """The flat config for chip `uid`: deep-copy, delete f9t_chips, update with the chip dict."""
    chips = file_cfg.get("f9t_chips") or []
    wanted = uid.strip().upper()
    for chip in chips:
        if isinstance(chip, dict) and str(chip.get("f9t_uid", "")).strip().upper() == wanted:
            merged = copy.deepcopy(file_cfg)
            merged.pop("f9t_chips", None)
            merged.update(copy.deepcopy(chip))
            return merged
    known = ", ".join(str(c.get("f9t_uid")) for c in chips if isinstance(c, dict)) or "none"
    raise ValueError(f"f9t_chips: no chip with f9t_uid {uid}; the file has: {known}")


def to_struct(data: dict[str, Any]) -> Struct:
    out = Struct()
    out.update(data)
    return out


@dataclass(frozen=True)
class HostMessage:
    """One CaptureUblox/PollMessage entry with the host it came from."""

    host: str
    response: pb.CaptureUbloxResponse


def stream_end_notice(err: grpc.RpcError, delay: float) -> pb.CaptureUbloxResponse:
    """The ERROR entry a capture yields when a stream ended and will be re-opened."""
    code = err.code()
    name = code.name if code is not None else "UNKNOWN"
    return error_response(f"stream ended: {name}: {err.details()}; re-subscribing in {delay:g} s")


def should_resubscribe(code: grpc.StatusCode | None, *, reconnect: bool, streamed: bool) -> bool:
    """Whether a capture re-opens a stream that ended with `code`.

    FAILED_PRECONDITION ("F9T is not initialized") is transient only on a host that has already
    streamed: its receiver is being re-plugged or re-initialised and the daemon brings it back.
    On a first subscription it means nobody ran InitF9t, and waiting would hang the caller, so
    it is raised for the operator to see.
    """
    if not reconnect:
        return False
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return streamed
    return code in RETRY_CODES


class UbloxControlClient:
    """Blocking client for one or more UbloxControl hosts."""

    def __init__(self, hosts: Sequence[str]) -> None:
        if not hosts:
            raise ValueError("hosts: give at least one UbloxControl address, e.g. localhost:50052")
        self.hosts = list(hosts)
        self._channels = {h: grpc.insecure_channel(h) for h in self.hosts}
        self._stubs = {h: pb_grpc.UbloxControlStub(c) for h, c in self._channels.items()}

    def __enter__(self) -> UbloxControlClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def init_f9t(
        self, f9t_config: dict[str, Any], force_init: bool = False, timeout: float = 60.0
    ) -> dict[str, pb.InitF9tResponse]:
        """InitF9t on every host; gRPC errors are raised (code and details name the cause)."""
        request = pb.InitF9tRequest(f9t_config=to_struct(f9t_config), force_init=force_init)
        return {h: stub.InitF9t(request, timeout=timeout) for h, stub in self._stubs.items()}

    def poll(self, patterns: Sequence[str], timeout: float = 60.0) -> list[HostMessage]:
        """PollMessage on every host."""
        out: list[HostMessage] = []
        for host, stub in self._stubs.items():
            reply = stub.PollMessage(pb.PollRequest(patterns=list(patterns)), timeout=timeout)
            out += [HostMessage(host, r) for r in reply.gnss_packet]
        return out

    def capture(
        self,
        patterns: Sequence[str] = (),
        stop_event: threading.Event | None = None,
        reconnect: bool = True,
    ) -> Iterator[HostMessage]:
        """Merge CaptureUblox streams of every host until `stop_event` is set."""
        stop = stop_event or threading.Event()
        inbox: queue.Queue[HostMessage | BaseException | None] = queue.Queue()
        calls: dict[str, Any] = {}
        lock = threading.Lock()

        def pump(host: str) -> None:
            try:
                pump_host(host)
            finally:
                inbox.put(None)  # this host is finished

        def pump_host(host: str) -> None:
            attempt = 0
            streamed = False
            while not stop.is_set():
                request = pb.CaptureUbloxRequest(patterns=list(patterns))
                call = self._stubs[host].CaptureUblox(request)
                with lock:
                    calls[host] = call
                try:
                    for response in call:
                        attempt = 0
                        streamed = True
                        inbox.put(HostMessage(host, response))
                    return
                except grpc.RpcError as err:
                    if stop.is_set():
                        return
                    if not should_resubscribe(err.code(), reconnect=reconnect, streamed=streamed):
                        inbox.put(err)
                        return
                    delay = backoff(attempt)
                    attempt += 1
                    inbox.put(HostMessage(host, stream_end_notice(err, delay)))
                    stop.wait(delay)

        threads = [threading.Thread(target=pump, args=(h,), daemon=True) for h in self.hosts]
        for thread in threads:
            thread.start()
        finished = 0
        try:
            while not stop.is_set() and finished < len(threads):
                try:
                    item = inbox.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is None:
                    finished += 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            stop.set()
            with lock:
                for call in calls.values():
                    call.cancel()
            for thread in threads:
                thread.join(timeout=2.0)


class AioUbloxControlClient:
    """asyncio client for one or more UbloxControl hosts."""

    def __init__(self, hosts: Sequence[str]) -> None:
        if not hosts:
            raise ValueError("hosts: give at least one UbloxControl address, e.g. localhost:50052")
        self.hosts = list(hosts)
        self._channels = {h: grpc.aio.insecure_channel(h) for h in self.hosts}
        self._stubs = {h: pb_grpc.UbloxControlStub(c) for h, c in self._channels.items()}

    async def __aenter__(self) -> AioUbloxControlClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def init_f9t(
        self, f9t_config: dict[str, Any], force_init: bool = False, timeout: float = 60.0
    ) -> dict[str, pb.InitF9tResponse]:
        request = pb.InitF9tRequest(f9t_config=to_struct(f9t_config), force_init=force_init)
        replies = await asyncio.gather(
            *(stub.InitF9t(request, timeout=timeout) for stub in self._stubs.values())
        )
        return dict(zip(self.hosts, replies, strict=True))

    async def poll(self, patterns: Sequence[str], timeout: float = 60.0) -> list[HostMessage]:
        request = pb.PollRequest(patterns=list(patterns))
        replies = await asyncio.gather(
            *(stub.PollMessage(request, timeout=timeout) for stub in self._stubs.values())
        )
        return [
            HostMessage(host, r)
            for host, reply in zip(self.hosts, replies, strict=True)
            for r in reply.gnss_packet
        ]

    async def capture(
        self,
        patterns: Sequence[str] = (),
        stop_event: asyncio.Event | None = None,
        reconnect: bool = True,
    ) -> AsyncIterator[HostMessage]:
        """Merge CaptureUblox streams of every host, each message labelled with its own host."""
        stop = stop_event or asyncio.Event()
        inbox: asyncio.Queue[HostMessage | BaseException | None] = asyncio.Queue()

        async def pump(host: str) -> None:
            try:
                await pump_host(host)
            finally:
                inbox.put_nowait(None)  # this host is finished

        async def pump_host(host: str) -> None:
            attempt = 0
            streamed = False
            while not stop.is_set():
                call = self._stubs[host].CaptureUblox(
                    pb.CaptureUbloxRequest(patterns=list(patterns))
                )
                try:
                    async for response in call:
                        attempt = 0
                        streamed = True
                        await inbox.put(HostMessage(host, response))
                    return
                except grpc.RpcError as err:
                    if stop.is_set():
                        return
                    if not should_resubscribe(err.code(), reconnect=reconnect, streamed=streamed):
                        await inbox.put(err)
                        return
                    delay = backoff(attempt)
                    attempt += 1
                    await inbox.put(HostMessage(host, stream_end_notice(err, delay)))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                finally:
                    call.cancel()

        tasks = [asyncio.create_task(pump(h)) for h in self.hosts]
        stopper = asyncio.create_task(stop.wait())
        finished = 0
        try:
            while not stop.is_set() and finished < len(tasks):
                getter = asyncio.create_task(inbox.get())
                done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    return
                item = getter.result()
                if item is None:
                    finished += 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            stopper.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
