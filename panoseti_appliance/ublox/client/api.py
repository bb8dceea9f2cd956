"""Clients of UbloxControl servers: `UbloxControlClient` (blocking) and `AioUbloxControlClient`.

Both talk to one or more hosts (gRPC targets such as `node1:50052` or `unix:///run/panoseti/ublox.sock`),
keep the host label on every message, and keep a capture going across daemon restarts, device
re-plugs and re-initialisations: such an end of stream is reported as an ERROR entry and the
stream is re-opened with back-off. Everything else (bad pattern, unknown host, a receiver that
was never initialised) is raised.

`load_f9t_config` reads an f9t_config JSON5 file into the typed `UbloxConfig` (the appliance's
own reading of that format, with its rules and messages) and `chip_config` gives one receiver's
flat InitF9t config by the file's merge rule (docs/ublox.md, "The f9t_config file").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.struct_pb2 import Struct

from panoseti_appliance import multihost
from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance._proto import ublox_control_pb2_grpc as pb_grpc
from panoseti_appliance.config.importers import read_f9t_config
from panoseti_appliance.config.models import UbloxConfig
from panoseti_appliance.loopthread import BlockingWrapper, blocking, blocking_iter
from panoseti_appliance.multihost import CallEnd, StopEvent
from panoseti_appliance.retry import RetryPolicy
from panoseti_appliance.ublox.parsed import error_response

#: Stream ends after which a capture re-subscribes: daemon or device gone, re-initialised.
RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
#: The waits before those re-subscriptions: 0.5 s rising to 10 s, reset by a message.
CAPTURE_RETRY = RetryPolicy(steps=(0.5, 1.0, 2.0, 5.0, 10.0))
#: Messages buffered between the per-host readers and the consumer.
CAPTURE_QUEUE_SIZE = 256


#: The client's name for the one reader of f9t_config files.
load_f9t_config = read_f9t_config


def chip_config(f9t: UbloxConfig, uid: str) -> dict[str, Any]:
    """The flat InitF9t config of chip `uid`: the general settings, the chip's keys winning.

    ValueError naming the known chips when the file has no chip `uid`.
    """
    return f9t.f9t_config(f9t.chip(uid))


def to_struct(data: dict[str, Any]) -> Struct:
    out = Struct()
    out.update(data)
    return out


@dataclass(frozen=True)
class HostMessage:
    """One CaptureUblox/PollMessage entry with the host it came from."""

    host: str
    response: pb.CaptureUbloxResponse


def stream_end_notice(end: CallEnd, delay: float) -> pb.CaptureUbloxResponse:
    """The ERROR entry a capture yields when a stream ended and will be re-opened."""
    return error_response(
        f"stream ended: {end.code.name}: {end.details}; re-subscribing in {delay:g} s"
    )


def _announce(host: str, end: CallEnd, delay: float) -> HostMessage:
    return HostMessage(host, stream_end_notice(end, delay))


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


class AioUbloxControlClient(multihost.AioChannelClient):
    """asyncio client for one or more UbloxControl hosts."""

    def __init__(self, hosts: Sequence[str], tls: multihost.ClientTls | None = None) -> None:
        if not hosts:
            raise ValueError("hosts: give at least one UbloxControl address, e.g. localhost:50052")
        super().__init__(tls)
        self.hosts = list(hosts)

    def _stub(self, host: str) -> pb_grpc.UbloxControlAsyncStub:
        return pb_grpc.UbloxControlStub(self._channel(host))

    async def init_f9t(
        self, f9t_config: dict[str, Any], force_init: bool = False, timeout: float = 60.0
    ) -> dict[str, pb.InitF9tResponse]:
        """InitF9t on every host; gRPC errors are raised (code and details name the cause)."""
        request = pb.InitF9tRequest(f9t_config=to_struct(f9t_config), force_init=force_init)
        replies = await asyncio.gather(
            *(self._stub(h).InitF9t(request, timeout=timeout) for h in self.hosts)
        )
        return dict(zip(self.hosts, replies, strict=True))

    async def poll(self, patterns: Sequence[str], timeout: float = 60.0) -> list[HostMessage]:
        """PollMessage on every host."""
        request = pb.PollRequest(patterns=list(patterns))
        replies = await asyncio.gather(
            *(self._stub(h).PollMessage(request, timeout=timeout) for h in self.hosts)
        )
        return [
            HostMessage(host, r)
            for host, reply in zip(self.hosts, replies, strict=True)
            for r in reply.gnss_packet
        ]

    def capture(
        self,
        patterns: Sequence[str] = (),
        stop_event: StopEvent | None = None,
        reconnect: bool = True,
    ) -> AsyncIterator[HostMessage]:
        """Merge CaptureUblox streams of every host, each message labelled with its own host."""
        request = pb.CaptureUbloxRequest(patterns=list(patterns))

        def judge(host: str, end: CallEnd, state: multihost.HostState) -> multihost.Verdict:
            if end.error is None:
                return multihost.Verdict.END
            streamed = state.received > 0
            if should_resubscribe(end.code, reconnect=reconnect, streamed=streamed):
                return multihost.Verdict.RETRY
            return multihost.Verdict.RAISE

        stream = multihost.MultiHostStream(
            self.hosts,
            lambda host: self._stub(host).CaptureUblox(request),
            convert=HostMessage,
            judge=judge,
            policy=CAPTURE_RETRY,
            queue_size=CAPTURE_QUEUE_SIZE,
            on_retry=_announce,
        )
        return stream.items(stop_event)


class UbloxControlClient(BlockingWrapper[AioUbloxControlClient]):
    """Blocking client for one or more UbloxControl hosts: the asyncio client on a loop thread."""

    def __init__(self, hosts: Sequence[str], tls: multihost.ClientTls | None = None) -> None:
        super().__init__(AioUbloxControlClient(hosts, tls), "ublox-client")

    @property
    def hosts(self) -> list[str]:
        return self._aio.hosts

    init_f9t = blocking(AioUbloxControlClient.init_f9t)
    poll = blocking(AioUbloxControlClient.poll)
    capture = blocking_iter(AioUbloxControlClient.capture)
