"""DaqDataClient (blocking) and AioDaqDataClient (asyncio): talk to one or many DaqData servers.

Both follow docs/clients.md, "Python", and fix the original's client bugs: merged streams read
every host independently (no head-of-line blocking), end only when every host has ended, raise
errors instead of swallowing them, and can re-subscribe after a server restart (`reconnect=True`).

    with DaqDataClient("daq_config.json", "network_config.json") as client:
        for image in client.stream_images(None, True, True, update_interval_seconds=1.0):
            print(image["module_id"], image["header"]["pandas_unix_timestamp"])
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypedDict, TypeVar, Unpack

import grpc
from google.protobuf import empty_pb2

from panoseti_appliance._proto import daq_data_pb2, daq_data_pb2_grpc
from panoseti_appliance.config.importers import read_observatory
from panoseti_appliance.config.models import HpIoConfig, ObservatoryConfig
from panoseti_appliance.config.originals import OriginalSource
from panoseti_appliance.daqdata.client import reflect
from panoseti_appliance.daqdata.client.encoding import encoding_named, stream_encoding
from panoseti_appliance.daqdata.client.hosts import DaqHost, resolve_hosts, target_for
from panoseti_appliance.daqdata.client.parse import ParsedImage, parse_pano_image, response_images
from panoseti_appliance.daqdata.client.rpc import (
    DEFAULT_SIM_HP_IO_CFG,
    DEFAULT_STREAM_TIMEOUT,
    ENDING_CODES,
    PING_TIMEOUT_SECONDS,
    RECONNECT_RETRY,
    RETRY_CODES,
    STREAM_QUEUE_SIZE,
    UPLOAD_FULL_WAIT_SECONDS,
    UPLOAD_QUEUE_SIZE,
    batch_request,
    describe_end,
    hp_io_settings,
    init_request,
    positive_int,
    stream_request,
    upload_image,
)
from panoseti_appliance.daqdata.pixels import Encoding
from panoseti_appliance.grpcstubs import aio_reflection_stub
from panoseti_appliance.loopthread import BlockingWrapper, blocking, blocking_stream
from panoseti_appliance.multihost import (
    AioChannelClient,
    CallEnd,
    ClientTls,
    HostState,
    MultiHostStream,
    StopEvent,
    Verdict,
    sync_channel,
)
from panoseti_appliance.runtime.bounded import Throttled

logger = logging.getLogger(__name__)
#: Skipped images are reported once a minute per host, with a count.
skipped_log = Throttled(logger)
STREAM_IMAGES = "/daqdata.DaqData/StreamImages"


HostsArg = str | Iterable[str] | None
#: Where the DAQ nodes are: a daq_config (path or dict) or the configuration's observatory section.
DaqConfigArg = OriginalSource | ObservatoryConfig
HpIoArg = HpIoConfig | Mapping[str, Any]
StreamStatus = tuple[grpc.StatusCode, str]
P = ParamSpec("P")
T = TypeVar("T")


class ClientOptions(TypedDict, total=False):
    """The keyword arguments of both clients' constructors (see AioDaqDataClient)."""

    hosts: Iterable[str] | None
    stop_event: StopEvent | None
    tls: ClientTls | None


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """Per-call settings of one stream_images call."""

    wait_for_ready: bool
    parse: bool
    timeout: float
    reconnect: bool


class _HostRegistry:
    """The configured hosts, the valid set and name resolution, shared by both clients."""

    def __init__(
        self,
        daq_config: DaqConfigArg | None,
        network_config: OriginalSource | None,
        hosts: Iterable[str] | None,
    ) -> None:
        observatory = None if daq_config is None else read_observatory(daq_config, network_config)
        self.daq_hosts: dict[str, DaqHost] = {
            h.target: h for h in resolve_hosts(observatory, hosts)
        }
        self.valid_daq_hosts: set[str] = set()
        #: `{target: (status code, details)}` of the last end of each host's stream.
        self.last_stream_status: dict[str, StreamStatus] = {}
        #: `{target: frames}` every-frame streams of this client lost, all streams together.
        self.frames_lost: dict[str, int] = {}

    def resolve(self, host: str) -> str:
        """The target of a configured host given by target or host key."""
        if host in self.daq_hosts:
            return host
        for daq_host in self.daq_hosts.values():
            if host == daq_host.host_key:
                return daq_host.target
        target = target_for(host)
        if target in self.daq_hosts:
            return target
        raise ConnectionError(
            f"host={host} does not have a valid gRPC server channel: it is not one of the "
            f"configured hosts {sorted(self.daq_hosts)}"
        )

    def named(self, hosts: HostsArg) -> list[str] | None:
        """Targets named by `hosts` (str or non-empty collection); None means all valid hosts."""
        if hosts is None:
            return None
        if isinstance(hosts, str):
            return [self.resolve(hosts)] if hosts else None
        if isinstance(hosts, list | tuple | set | frozenset):
            return [self.resolve(h) for h in hosts] if hosts else None
        raise ValueError(
            f"hosts must be a host name, a list or set of them, or None, not {type(hosts).__name__}"
        )

    def check_valid(self, named: list[str] | None) -> list[str]:
        targets = sorted(self.valid_daq_hosts) if named is None else named
        for target in targets:
            if target not in self.valid_daq_hosts:
                raise ConnectionError(
                    f"host={target} does not have a valid gRPC server channel: it did not answer "
                    "Ping; check that panoseti-daqdata runs there and the port is reachable"
                )
        if not targets:
            raise ConnectionError("No valid daq hosts found")
        return targets

    def record_ping(self, target: str, ok: bool) -> bool:
        if ok:
            self.valid_daq_hosts.add(target)
        else:
            self.valid_daq_hosts.discard(target)
        return ok

    def record_end(self, target: str, code: grpc.StatusCode, details: str) -> None:
        self.last_stream_status[target] = (code, details)
        logger.warning(describe_end(target, code, details))

    def record_lost(self, target: str, frames: int) -> None:
        self.frames_lost[target] = self.frames_lost.get(target, 0) + frames

    def data_dir(self, target: str) -> Path | None:
        return self.daq_hosts[target].data_dir


class _HostViews:
    """What both clients tell about their hosts, read from their one registry."""

    _registry: _HostRegistry

    @property
    def daq_hosts(self) -> dict[str, DaqHost]:
        return self._registry.daq_hosts

    @property
    def valid_daq_hosts(self) -> set[str]:
        return self._registry.valid_daq_hosts

    @property
    def last_stream_status(self) -> dict[str, StreamStatus]:
        return self._registry.last_stream_status

    @property
    def frames_lost(self) -> dict[str, int]:
        """`{target: frames}` the servers dropped from this client's every-frame streams."""
        return self._registry.frames_lost


_DONE = object()


def _init_outcome(results: Mapping[str, Any]) -> bool:
    """Log each host's InitHpIo result; raise the first gRPC error; True when all succeeded."""
    ok = True
    first_error: BaseException | None = None
    for target, result in results.items():
        if isinstance(result, BaseException):
            logger.error("InitHpIo on %s failed: %s", target, result)
            first_error = first_error or result
        elif not result.success:
            ok = False
            logger.error("InitHpIo on %s failed: %s", target, result.error_message)
        else:
            logger.info("InitHpIo on %s succeeded", target)
    if first_error is not None:
        raise first_error
    return ok


def _images_only(
    by_host: Callable[P, Awaitable[AsyncGenerator[tuple[str, T], None]]],
) -> Callable[P, Coroutine[Any, Any, AsyncIterator[T]]]:
    """stream_images from stream_images_by_host: the same stream without the host labels."""

    async def stream_images(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        return _strip_hosts(await by_host(*args, **kwargs))

    functools.update_wrapper(stream_images, by_host, assigned=("__module__",))
    stream_images.__doc__ = "The images of every host merged into one stream (parsed or raw)."
    return stream_images


def _announce_retry(target: str, end: CallEnd, delay: float) -> None:
    logger.info("re-subscribing to %s in %.1f s", target, delay)


class AioDaqDataClient(AioChannelClient, _HostViews):
    """asyncio client with the same methods as coroutines.

    `await client.stream_images(...)` returns an async generator (kept for compatibility with
    the original). `stop_event` is an asyncio.Event (a threading.Event is looked at every
    0.25 s); a per-call one overrides it.
    """

    def __init__(
        self,
        daq_config: DaqConfigArg | None = None,
        network_config: OriginalSource | None = None,
        *,
        hosts: Iterable[str] | None = None,
        stop_event: StopEvent | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        super().__init__(tls)
        self._registry = _HostRegistry(daq_config, network_config, hosts)
        self.stop_event = stop_event

    async def __aenter__(self) -> AioDaqDataClient:
        await self.get_daq_host_status()
        return self

    def _stub(self, target: str) -> daq_data_pb2_grpc.DaqDataAsyncStub:
        return daq_data_pb2_grpc.DaqDataStub(self._channel(target))

    async def ping(self, host: str, timeout: float = PING_TIMEOUT_SECONDS) -> bool:
        target = self._registry.resolve(host)
        try:
            await self._stub(target).Ping(empty_pb2.Empty(), timeout=timeout, wait_for_ready=True)
        except grpc.RpcError as exc:
            logger.debug("ping %s failed: %s", target, exc.code())
            return False
        return True

    async def is_daq_host_valid(self, host: str) -> bool:
        target = self._registry.resolve(host)
        return self._registry.record_ping(target, await self.ping(target))

    async def get_daq_host_status(self) -> dict[str, bool]:
        targets = list(self.daq_hosts)
        results = await asyncio.gather(*(self.is_daq_host_valid(t) for t in targets))
        return dict(zip(targets, results, strict=True))

    async def get_valid_daq_hosts(self) -> list[str]:
        return [t for t, ok in (await self.get_daq_host_status()).items() if ok]

    async def validate_daq_hosts(self, hosts: HostsArg) -> list[str]:
        named = self._registry.named(hosts)
        if named is None:
            await self.get_daq_host_status()
        else:
            await asyncio.gather(*(self.is_daq_host_valid(t) for t in named))
        return self._registry.check_valid(named)

    async def reflect_services(self, hosts: HostsArg = None, timeout: float = 5.0) -> str:
        blocks = []
        for target in await self.validate_daq_hosts(hosts):
            stub = aio_reflection_stub(self._channel(target))
            call = stub.ServerReflectionInfo(iter(reflect.reflection_requests()), timeout=timeout)
            responses = [response async for response in call]
            blocks.append(reflect.render_reflection(target, responses))
        return "\n".join(blocks)

    async def init_hp_io(
        self,
        hosts: HostsArg,
        hp_io_cfg: HpIoArg,
        timeout: float = 10.0,
        *,
        simulate: bool = False,
    ) -> bool:
        hp_io = hp_io_settings(hp_io_cfg, simulate=simulate)
        targets = await self.validate_daq_hosts(hosts)
        requests = {t: init_request(hp_io, self._registry.data_dir(t)) for t in targets}
        results = await asyncio.gather(
            *(self._stub(t).InitHpIo(requests[t], timeout=timeout) for t in targets),
            return_exceptions=True,
        )
        return _init_outcome(dict(zip(targets, results, strict=True)))

    async def init_sim(
        self, hosts: HostsArg, hp_io_cfg: HpIoArg | None = None, timeout: float = 15.0
    ) -> bool:
        return await self.init_hp_io(
            hosts, hp_io_cfg or DEFAULT_SIM_HP_IO_CFG, timeout, simulate=True
        )

    async def stream_images_by_host(
        self,
        hosts: HostsArg,
        stream_movie_data: bool,
        stream_pulse_height_data: bool,
        update_interval_seconds: float,
        module_ids: Iterable[int] = (),
        wait_for_ready: bool = False,
        parse_pano_images: bool = True,
        timeout: float = DEFAULT_STREAM_TIMEOUT,
        *,
        stop_event: StopEvent | None = None,
        reconnect: bool = False,
        every_frame: bool = False,
        max_frames_per_response: int = 1,
        encoding: str | None = None,
        compression: str | None = None,
    ) -> AsyncGenerator[tuple[str, Any], None]:
        """The merged stream as `(target, image)` pairs: parsed dicts (one per frame) or raw
        responses (one per response).

        `every_frame` asks for every frame in order instead of the newest per interval,
        `max_frames_per_response` for up to that many frames per response; `encoding`
        ("packed", "raw", "lz4", "zstd"; None: RAW for a server on this machine, else PACKED)
        and `compression` ("lz4", "zstd") choose how the pixels travel (docs/clients.md).
        """

        def request(target: str) -> daq_data_pb2.StreamImagesRequest:
            return stream_request(
                stream_movie_data,
                stream_pulse_height_data,
                update_interval_seconds,
                module_ids,
                pixel_encoding=stream_encoding(target, encoding, compression),
                every_frame=every_frame,
                max_frames_per_response=max_frames_per_response,
            )

        request("")  # bad options raise before any host is pinged (the target only picks auto)
        targets = await self.validate_daq_hosts(hosts)
        requests = {target: request(target) for target in targets}
        if every_frame:
            for target in targets:
                self._registry.frames_lost.setdefault(target, 0)
        options = StreamOptions(wait_for_ready, parse_pano_images, timeout, reconnect)
        merged = self._merged(requests, options).items(stop_event or self.stop_event)
        return _flattened(merged)

    stream_images = _images_only(stream_images_by_host)

    def _merged(
        self,
        requests: dict[str, daq_data_pb2.StreamImagesRequest],
        options: StreamOptions,
    ) -> MultiHostStream[Any, tuple[str, list[Any]]]:
        """StreamImages of every target (each with its request), with the end rules of both
        DaqData clients. An item is one response's images (or the response when not parsing)."""

        def open_call(target: str) -> Any:
            # Responses arrive as bytes and are decoded in `convert`: one that does not decode
            # is then one skipped image, where the stub's decoder would end the whole call.
            call: Any = self._channel(target).unary_stream(
                STREAM_IMAGES,
                request_serializer=daq_data_pb2.StreamImagesRequest.SerializeToString,
                response_deserializer=None,
            )
            return call(
                requests[target], timeout=options.timeout, wait_for_ready=options.wait_for_ready
            )

        def convert(target: str, data: bytes) -> tuple[str, list[Any]]:
            try:
                response = daq_data_pb2.StreamImagesResponse.FromString(data)
            except Exception as exc:  # noqa: BLE001 - an unreadable image must not end the stream
                _skipped(target, exc)
                return target, []
            if response.frames_lost:
                self._registry.record_lost(target, response.frames_lost)
            return target, _parsed(target, response) if options.parse else [response]

        def judge(target: str, end: CallEnd, state: HostState) -> Verdict:
            if end.code not in ENDING_CODES:
                return Verdict.RAISE
            self._registry.record_end(target, end.code, end.details)
            return Verdict.RETRY if options.reconnect and end.code in RETRY_CODES else Verdict.END

        return MultiHostStream(
            list(requests),
            open_call,
            convert=convert,
            judge=judge,
            policy=RECONNECT_RETRY,
            queue_size=STREAM_QUEUE_SIZE,
            on_retry=_announce_retry,
        )

    async def upload_images(
        self,
        hosts: HostsArg,
        image_iterator: AsyncIterable[Any] | Iterable[Any],
        timeout: float | None = None,
        *,
        batch: int = 1,
        encoding: str | None = None,
    ) -> None:
        """Send every image to every host (one UploadImages call each); errors raise.

        `batch` images go in each request (pano_image, then more_images); `encoding`
        ("packed", "raw", "lz4", "zstd"; None: as given) re-encodes each PanoImage's pixels
        first. UploadImageRequest messages are sent unchanged, each as it is.
        """
        size = positive_int(batch, "batch")
        wanted = None if encoding is None else encoding_named(encoding)
        targets = await self.validate_daq_hosts(hosts)
        queues = {t: queue.Queue[Any](maxsize=UPLOAD_QUEUE_SIZE) for t in targets}

        def send(target: str) -> Any:
            # grpc's blocking API in a worker thread, not grpc.aio: when a host ends the call
            # early (it refused an image), a grpc.aio write racing the host's status fails with
            # INTERNAL ("Failed execute_batch") and the host's own status and reason are lost.
            def requests() -> Iterator[Any]:
                while (request := queues[target].get()) is not _DONE:
                    yield request

            with sync_channel(target, self.tls) as channel:
                stub = daq_data_pb2_grpc.DaqDataStub(channel)
                return stub.UploadImages(requests(), timeout=timeout)

        calls = {t: asyncio.ensure_future(asyncio.to_thread(send, t)) for t in targets}

        async def fan_out(request: Any) -> None:
            for t in targets:
                while not calls[t].done():  # a host that ended takes no more
                    try:
                        queues[t].put_nowait(request)
                        break
                    except queue.Full:
                        await asyncio.wait({calls[t]}, timeout=UPLOAD_FULL_WAIT_SECONDS)

        try:
            async for request in _upload_requests(image_iterator, size, wanted):
                await fan_out(request)
        finally:
            await fan_out(_DONE)
            results = await asyncio.gather(*calls.values(), return_exceptions=True)
        for target, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                logger.error("upload to %s failed: %s", target, result)
                raise result


def _skipped(target: str, exc: Exception) -> None:
    skipped_log.warning(
        f"skip {target}", "%s: skipped an image this client cannot read: %r", target, exc
    )


def _parsed(target: str, response: daq_data_pb2.StreamImagesResponse) -> list[ParsedImage]:
    """Every image of a response parsed, the response's frames_lost on the first one; an image
    this client cannot read is skipped (logged) without losing the others."""
    out = []
    lost = response.frames_lost
    for image in response_images(response):
        try:
            out.append(parse_pano_image(image, lost))
        except Exception as exc:  # noqa: BLE001 - an unreadable image must not end the stream
            _skipped(target, exc)
            continue
        lost = 0
    return out


async def _upload_requests(
    images: AsyncIterable[Any] | Iterable[Any], batch: int, encoding: Encoding | None
) -> AsyncIterator[daq_data_pb2.UploadImageRequest]:
    """`images` as UploadImageRequests of `batch` PanoImages (the last one may hold fewer)."""
    pending: list[daq_data_pb2.PanoImage] = []
    async for item in _aiter(images):
        if isinstance(item, daq_data_pb2.UploadImageRequest):
            if pending:
                yield batch_request(pending)
                pending = []
            yield item
            continue
        pending.append(upload_image(item, encoding))
        if len(pending) == batch:
            yield batch_request(pending)
            pending = []
    if pending:
        yield batch_request(pending)


async def _flattened(
    merged: AsyncGenerator[tuple[str, list[Any]], None],
) -> AsyncGenerator[tuple[str, Any], None]:
    """The merged stream one image at a time (a skipped response contributes none)."""
    try:
        async for target, items in merged:
            for item in items:
                yield target, item
    finally:
        await merged.aclose()


async def _strip_hosts(merged: AsyncGenerator[tuple[str, Any], None]) -> AsyncIterator[Any]:
    try:
        async for _target, item in merged:
            yield item
    finally:
        await merged.aclose()


async def _aiter(images: AsyncIterable[Any] | Iterable[Any]) -> AsyncIterator[Any]:
    if isinstance(images, AsyncIterable):
        async for image in images:
            yield image
    else:
        for image in images:
            yield image


class DaqDataClient(BlockingWrapper[AioDaqDataClient], _HostViews):
    """Blocking client: the asyncio client run on a private event loop thread.

    `daq_config`/`network_config` are paths or dicts (or `daq_config` is the configuration's
    `ObservatoryConfig`); `hosts` is a plain list of host names or targets instead of (or
    restricting) the daq_config. `stop_event` (a threading.Event)
    ends every stream of this client when set (a per-call stop_event overrides it).
    """

    def __init__(
        self,
        daq_config: DaqConfigArg | None = None,
        network_config: OriginalSource | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        aio = AioDaqDataClient(daq_config, network_config, **options)
        super().__init__(aio, "daqdata-client")
        self._registry = aio._registry

    def __enter__(self) -> DaqDataClient:
        self.get_daq_host_status()
        return self

    @property
    def stop_event(self) -> StopEvent | None:
        return self._aio.stop_event

    @stop_event.setter
    def stop_event(self, event: threading.Event | None) -> None:
        self._aio.stop_event = event

    ping = blocking(AioDaqDataClient.ping)
    is_daq_host_valid = blocking(AioDaqDataClient.is_daq_host_valid)
    get_daq_host_status = blocking(AioDaqDataClient.get_daq_host_status)
    get_valid_daq_hosts = blocking(AioDaqDataClient.get_valid_daq_hosts)
    validate_daq_hosts = blocking(AioDaqDataClient.validate_daq_hosts)
    reflect_services = blocking(AioDaqDataClient.reflect_services)
    init_hp_io = blocking(AioDaqDataClient.init_hp_io)
    init_sim = blocking(AioDaqDataClient.init_sim)
    stream_images = blocking_stream(AioDaqDataClient.stream_images, lazy=True)
    stream_images_by_host = blocking_stream(AioDaqDataClient.stream_images_by_host)

    def upload_images(
        self,
        hosts: HostsArg,
        image_iterator: Iterable[Any],
        timeout: float | None = None,
        *,
        batch: int = 1,
        encoding: str | None = None,
    ) -> None:
        """Send every image (PanoImage or UploadImageRequest) to every host; errors raise.

        `batch` and `encoding` as for AioDaqDataClient.upload_images.
        """
        images = _pulled_in_threads(image_iterator)
        self._loop.run(
            self._aio.upload_images(hosts, images, timeout, batch=batch, encoding=encoding)
        )


async def _pulled_in_threads(images: Iterable[Any]) -> AsyncIterator[Any]:
    """A blocking iterable as an async one: each item is taken in a worker thread, one at a
    time, so a slow producer of images never holds up the loop's calls."""
    iterator = iter(images)
    while (image := await asyncio.to_thread(next, iterator, _DONE)) is not _DONE:
        yield image
