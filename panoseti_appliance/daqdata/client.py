"""DaqDataClient (threads) and AioDaqDataClient (asyncio): talk to one or many DaqData servers.

Both follow spec daqdata.md §E.2 and fix the original's client bugs (§I.11): merged streams read
every host independently (no head-of-line blocking), end only when every host has ended, raise
errors instead of swallowing them, and can re-subscribe after a server restart (`reconnect=True`).

    with DaqDataClient("daq_config.json", "network_config.json") as client:
        for image in client.stream_images(None, True, True, update_interval_seconds=1.0):
            print(image["module_id"], image["header"]["pandas_unix_timestamp"])
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc
from google.protobuf import empty_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc

from panoseti_appliance._proto import daq_data_pb2, daq_data_pb2_grpc
from panoseti_appliance.daqdata import reflect
from panoseti_appliance.daqdata.hosts import ConfigInput, DaqHost, resolve_hosts, target_for
from panoseti_appliance.daqdata.parse import parse_response
from panoseti_appliance.daqdata.rpc import (
    DEFAULT_SIM_HP_IO_CFG,
    DEFAULT_STREAM_TIMEOUT,
    ENDING_CODES,
    PING_TIMEOUT_SECONDS,
    RETRY_CODES,
    STOP_POLL_SECONDS,
    STREAM_QUEUE_SIZE,
    UPLOAD_QUEUE_SIZE,
    Backoff,
    describe_end,
    init_request,
    stream_request,
    upload_request,
)

logger = logging.getLogger(__name__)

HostsArg = str | Iterable[str] | None
StreamStatus = tuple[grpc.StatusCode, str]


@dataclass(frozen=True, slots=True)
class _HostEnded:
    target: str


@dataclass(frozen=True, slots=True)
class _HostFailed:
    target: str
    error: BaseException


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
        daq_config: ConfigInput | None,
        network_config: ConfigInput | None,
        hosts: Iterable[str] | None,
    ) -> None:
        self.daq_hosts: dict[str, DaqHost] = {
            h.target: h for h in resolve_hosts(daq_config, network_config, hosts)
        }
        self.valid_daq_hosts: set[str] = set()
        #: `{target: (status code, details)}` of the last end of each host's stream.
        self.last_stream_status: dict[str, StreamStatus] = {}

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

    def data_dir(self, target: str) -> str:
        return self.daq_hosts[target].data_dir


class DaqDataClient:
    """Blocking client: one channel per host, one reader thread per host while streaming.

    `daq_config`/`network_config` are paths or dicts (spec §E.1); `hosts` is a plain list of host
    names or targets instead of (or restricting) the daq_config. `stop_event` ends every stream of
    this client when set (a per-call stop_event overrides it).
    """

    def __init__(
        self,
        daq_config: ConfigInput | None = None,
        network_config: ConfigInput | None = None,
        *,
        hosts: Iterable[str] | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self._registry = _HostRegistry(daq_config, network_config, hosts)
        self.stop_event = stop_event
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    @property
    def daq_hosts(self) -> dict[str, DaqHost]:
        return self._registry.daq_hosts

    @property
    def valid_daq_hosts(self) -> set[str]:
        return self._registry.valid_daq_hosts

    @property
    def last_stream_status(self) -> dict[str, StreamStatus]:
        return self._registry.last_stream_status

    # -- lifetime ------------------------------------------------------------------------------

    def __enter__(self) -> DaqDataClient:
        self.get_daq_host_status()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every channel (in-flight calls end with CANCELLED)."""
        with self._lock:
            channels, self._channels = self._channels, {}
        for channel in channels.values():
            channel.close()

    def _channel(self, target: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(target)
            if channel is None:
                channel = self._channels[target] = grpc.insecure_channel(target)
            return channel

    def _stub(self, target: str) -> daq_data_pb2_grpc.DaqDataStub:
        return daq_data_pb2_grpc.DaqDataStub(self._channel(target))

    def _map_hosts(self, targets: list[str], fn: Any) -> list[Any]:
        """Run `fn(target)` for every target concurrently; results in target order."""
        if len(targets) == 1:
            return [fn(targets[0])]
        with ThreadPoolExecutor(max_workers=min(len(targets), 16)) as pool:
            return list(pool.map(fn, targets))

    # -- hosts ---------------------------------------------------------------------------------

    def ping(self, host: str, timeout: float = PING_TIMEOUT_SECONDS) -> bool:
        """True when `host` answers Ping within `timeout`; any error means False."""
        target = self._registry.resolve(host)
        try:
            self._stub(target).Ping(empty_pb2.Empty(), timeout=timeout, wait_for_ready=True)
        except grpc.RpcError as exc:
            logger.debug("ping %s failed: %s", target, exc.code())
            return False
        return True

    def is_daq_host_valid(self, host: str) -> bool:
        """Ping `host` and update the valid set."""
        target = self._registry.resolve(host)
        return self._registry.record_ping(target, self.ping(target))

    def get_daq_host_status(self) -> dict[str, bool]:
        """`{target: valid}` for every configured host, re-pinged concurrently."""
        targets = list(self.daq_hosts)
        return dict(zip(targets, self._map_hosts(targets, self.is_daq_host_valid), strict=True))

    def get_valid_daq_hosts(self) -> list[str]:
        """Re-ping every host and return the targets that answered."""
        return [t for t, ok in self.get_daq_host_status().items() if ok]

    def validate_daq_hosts(self, hosts: HostsArg) -> list[str]:
        """Targets to talk to: the named ones (each must answer Ping), or all valid hosts."""
        named = self._registry.named(hosts)
        if named is None:
            self.get_daq_host_status()
        else:
            for target in named:
                self.is_daq_host_valid(target)
        return self._registry.check_valid(named)

    def reflect_services(self, hosts: HostsArg = None, timeout: float = 5.0) -> str:
        """Services and daqdata.DaqData methods of each host, through server reflection."""
        blocks = []
        for target in self.validate_daq_hosts(hosts):
            stub = reflection_pb2_grpc.ServerReflectionStub(self._channel(target))
            responses = stub.ServerReflectionInfo(
                iter(reflect.reflection_requests()), timeout=timeout
            )
            blocks.append(reflect.render_reflection(target, list(responses)))
        return "\n".join(blocks)

    # -- InitHpIo ------------------------------------------------------------------------------

    def init_hp_io(
        self,
        hosts: HostsArg,
        hp_io_cfg: Mapping[str, Any],
        timeout: float = 10.0,
        *,
        simulate: bool | None = None,
    ) -> bool:
        """InitHpIo on every host concurrently; True when all succeeded; gRPC errors raise."""
        targets = self.validate_daq_hosts(hosts)
        requests = {
            t: init_request(hp_io_cfg, self._registry.data_dir(t), simulate=simulate)
            for t in targets
        }

        def call(target: str) -> daq_data_pb2.InitHpIoResponse | grpc.RpcError:
            try:
                return self._stub(target).InitHpIo(requests[target], timeout=timeout)
            except grpc.RpcError as exc:
                return exc

        results = dict(zip(targets, self._map_hosts(targets, call), strict=True))
        return _init_outcome(results)

    def init_sim(
        self, hosts: HostsArg, hp_io_cfg: Mapping[str, Any] | None = None, timeout: float = 15.0
    ) -> bool:
        """init_hp_io with the packaged simulate config (simulate_daq is always set)."""
        return self.init_hp_io(hosts, hp_io_cfg or DEFAULT_SIM_HP_IO_CFG, timeout, simulate=True)

    # -- StreamImages --------------------------------------------------------------------------

    def stream_images(
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
        stop_event: threading.Event | None = None,
        reconnect: bool = False,
    ) -> Iterator[Any]:
        """Images of every host merged into one iterator: parsed dicts (§E.3) or raw responses."""
        merged = self.stream_images_by_host(
            hosts,
            stream_movie_data,
            stream_pulse_height_data,
            update_interval_seconds,
            module_ids,
            wait_for_ready,
            parse_pano_images,
            timeout,
            stop_event=stop_event,
            reconnect=reconnect,
        )
        # Closing this generator closes the merge at once: calls cancelled, readers joined.
        with contextlib.closing(merged):
            for _target, item in merged:
                yield item

    def stream_images_by_host(
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
        stop_event: threading.Event | None = None,
        reconnect: bool = False,
    ) -> Generator[tuple[str, Any], None, None]:
        """Like stream_images, yielding `(target, image)` so callers can tell hosts apart."""
        request = stream_request(
            stream_movie_data, stream_pulse_height_data, update_interval_seconds, module_ids
        )
        targets = self.validate_daq_hosts(hosts)
        options = StreamOptions(wait_for_ready, parse_pano_images, timeout, reconnect)
        return self._merged(targets, request, options, stop_event or self.stop_event)

    def _merged(
        self,
        targets: list[str],
        request: daq_data_pb2.StreamImagesRequest,
        options: StreamOptions,
        stop_event: threading.Event | None,
    ) -> Generator[tuple[str, Any], None, None]:
        items: queue.Queue[Any] = queue.Queue(maxsize=STREAM_QUEUE_SIZE)
        halt = threading.Event()
        calls: dict[str, Any] = {}
        readers = [
            threading.Thread(
                target=self._read_host,
                args=(target, request, options, items, halt, calls),
                name=f"daqdata-stream-{target}",
                daemon=True,
            )
            for target in targets
        ]
        for reader in readers:
            reader.start()
        remaining = len(readers)
        try:
            while remaining:
                if stop_event is not None and stop_event.is_set():
                    return
                try:
                    item = items.get(timeout=STOP_POLL_SECONDS)
                except queue.Empty:
                    continue
                if isinstance(item, _HostEnded):
                    remaining -= 1
                elif isinstance(item, _HostFailed):
                    raise item.error
                else:
                    yield item
        finally:
            halt.set()
            with self._lock:
                active = list(calls.values())
            for call in active:
                call.cancel()
            for reader in readers:
                reader.join(timeout=5.0)

    def _read_host(
        self,
        target: str,
        request: daq_data_pb2.StreamImagesRequest,
        options: StreamOptions,
        items: queue.Queue[Any],
        halt: threading.Event,
        calls: dict[str, Any],
    ) -> None:
        """Reader thread of one host: stream, apply the end rules, re-subscribe if asked."""
        backoff = Backoff()
        stub = self._stub(target)
        while not halt.is_set():
            try:
                call = stub.StreamImages(
                    request, timeout=options.timeout, wait_for_ready=options.wait_for_ready
                )
            except ValueError as exc:  # the client was closed under a running stream
                _put_unless(items, _HostFailed(target, exc), halt)
                return
            with self._lock:
                calls[target] = call
            if halt.is_set():
                call.cancel()
                return
            try:
                for response in call:
                    item = parse_response(response) if options.parse else response
                    if not _put_unless(items, (target, item), halt):
                        return
                    backoff.reset()
                code, details = grpc.StatusCode.OK, call.details() or ""
            except grpc.RpcError as exc:
                if halt.is_set():
                    return
                code, details = exc.code(), exc.details() or ""
                if code not in ENDING_CODES:
                    _put_unless(items, _HostFailed(target, exc), halt)
                    return
            except Exception as exc:
                call.cancel()
                _put_unless(items, _HostFailed(target, exc), halt)
                return
            self._registry.record_end(target, code, details)
            if not (options.reconnect and code in RETRY_CODES):
                _put_unless(items, _HostEnded(target), halt)
                return
            delay = backoff.next_delay()
            logger.info("re-subscribing to %s in %.1f s", target, delay)
            if halt.wait(delay):
                return

    # -- UploadImages --------------------------------------------------------------------------

    def upload_images(
        self, hosts: HostsArg, image_iterator: Iterable[Any], timeout: float | None = None
    ) -> None:
        """Send every image (PanoImage or UploadImageRequest) to every host; errors raise."""
        targets = self.validate_daq_hosts(hosts)
        uploads = [_Upload(self._stub(t), t, timeout) for t in targets]
        for upload in uploads:
            upload.start()
        try:
            for image in image_iterator:
                request = upload_request(image)
                for upload in uploads:
                    upload.put(request)
        finally:
            for upload in uploads:
                upload.finish()
        errors = [u.error for u in uploads if u.error is not None]
        if errors:
            raise errors[0]


def _put_unless(items: queue.Queue[Any], item: Any, halt: threading.Event) -> bool:
    """Put into a bounded queue, giving up (False) once `halt` is set."""
    while not halt.is_set():
        try:
            items.put(item, timeout=STOP_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


_DONE = object()


class _Upload:
    """One host's UploadImages call, fed from a bounded queue by the fan-out loop."""

    def __init__(self, stub: Any, target: str, timeout: float | None) -> None:
        self.stub = stub
        self.target = target
        self.timeout = timeout
        self.requests: queue.Queue[Any] = queue.Queue(maxsize=UPLOAD_QUEUE_SIZE)
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, name=f"daqdata-upload-{target}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def _iter_requests(self) -> Iterator[Any]:
        while True:
            request = self.requests.get()
            if request is _DONE:
                return
            yield request

    def _run(self) -> None:
        try:
            self.stub.UploadImages(self._iter_requests(), timeout=self.timeout)
        except grpc.RpcError as exc:
            self.error = exc
            logger.error("upload to %s failed: %s %s", self.target, exc.code().name, exc.details())
        finally:
            self.done.set()

    def put(self, request: Any) -> None:
        _put_unless(self.requests, request, self.done)

    def finish(self) -> None:
        _put_unless(self.requests, _DONE, self.done)
        self.thread.join()


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


class AioDaqDataClient:
    """asyncio client with the same methods as coroutines (spec §E.2).

    `await client.stream_images(...)` returns an async generator (kept for compatibility with
    the original). `stop_event` is an asyncio.Event; a per-call one overrides it.
    """

    def __init__(
        self,
        daq_config: ConfigInput | None = None,
        network_config: ConfigInput | None = None,
        *,
        hosts: Iterable[str] | None = None,
        stop_event: asyncio.Event | None = None,
    ) -> None:
        self._registry = _HostRegistry(daq_config, network_config, hosts)
        self.stop_event = stop_event
        self._channels: dict[str, grpc.aio.Channel] = {}

    @property
    def daq_hosts(self) -> dict[str, DaqHost]:
        return self._registry.daq_hosts

    @property
    def valid_daq_hosts(self) -> set[str]:
        return self._registry.valid_daq_hosts

    @property
    def last_stream_status(self) -> dict[str, StreamStatus]:
        return self._registry.last_stream_status

    async def __aenter__(self) -> AioDaqDataClient:
        await self.get_daq_host_status()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()

    def _channel(self, target: str) -> grpc.aio.Channel:
        channel = self._channels.get(target)
        if channel is None:
            channel = self._channels[target] = grpc.aio.insecure_channel(target)
        return channel

    def _stub(self, target: str) -> daq_data_pb2_grpc.DaqDataStub:
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
            stub = reflection_pb2_grpc.ServerReflectionStub(self._channel(target))
            call = stub.ServerReflectionInfo(iter(reflect.reflection_requests()), timeout=timeout)
            responses = [response async for response in call]
            blocks.append(reflect.render_reflection(target, responses))
        return "\n".join(blocks)

    async def init_hp_io(
        self,
        hosts: HostsArg,
        hp_io_cfg: Mapping[str, Any],
        timeout: float = 10.0,
        *,
        simulate: bool | None = None,
    ) -> bool:
        targets = await self.validate_daq_hosts(hosts)
        requests = {
            t: init_request(hp_io_cfg, self._registry.data_dir(t), simulate=simulate)
            for t in targets
        }
        results = await asyncio.gather(
            *(self._stub(t).InitHpIo(requests[t], timeout=timeout) for t in targets),
            return_exceptions=True,
        )
        return _init_outcome(dict(zip(targets, results, strict=True)))

    async def init_sim(
        self, hosts: HostsArg, hp_io_cfg: Mapping[str, Any] | None = None, timeout: float = 15.0
    ) -> bool:
        return await self.init_hp_io(
            hosts, hp_io_cfg or DEFAULT_SIM_HP_IO_CFG, timeout, simulate=True
        )

    async def stream_images(
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
        stop_event: asyncio.Event | None = None,
        reconnect: bool = False,
    ) -> AsyncIterator[Any]:
        """An async generator of images of every host (parsed dicts or raw responses)."""
        merged = await self.stream_images_by_host(
            hosts,
            stream_movie_data,
            stream_pulse_height_data,
            update_interval_seconds,
            module_ids,
            wait_for_ready,
            parse_pano_images,
            timeout,
            stop_event=stop_event,
            reconnect=reconnect,
        )
        return _strip_hosts(merged)

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
        stop_event: asyncio.Event | None = None,
        reconnect: bool = False,
    ) -> AsyncGenerator[tuple[str, Any], None]:
        """Like stream_images, yielding `(target, image)`."""
        request = stream_request(
            stream_movie_data, stream_pulse_height_data, update_interval_seconds, module_ids
        )
        targets = await self.validate_daq_hosts(hosts)
        options = StreamOptions(wait_for_ready, parse_pano_images, timeout, reconnect)
        return self._merged(targets, request, options, stop_event or self.stop_event)

    async def _merged(
        self,
        targets: list[str],
        request: daq_data_pb2.StreamImagesRequest,
        options: StreamOptions,
        stop_event: asyncio.Event | None,
    ) -> AsyncGenerator[tuple[str, Any], None]:
        items: asyncio.Queue[Any] = asyncio.Queue(maxsize=STREAM_QUEUE_SIZE)
        readers = [
            asyncio.create_task(self._read_host(t, request, options, items), name=f"stream {t}")
            for t in targets
        ]
        getter: asyncio.Task[Any] | None = None
        remaining = len(readers)
        try:
            while remaining:
                if stop_event is not None and stop_event.is_set():
                    return
                if getter is None:
                    getter = asyncio.ensure_future(items.get())
                done, _ = await asyncio.wait({getter}, timeout=STOP_POLL_SECONDS)
                if not done:
                    continue
                item, getter = getter.result(), None
                if isinstance(item, _HostEnded):
                    remaining -= 1
                elif isinstance(item, _HostFailed):
                    raise item.error
                else:
                    yield item
        finally:
            for task in [*readers, *([getter] if getter else [])]:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    async def _read_host(
        self,
        target: str,
        request: daq_data_pb2.StreamImagesRequest,
        options: StreamOptions,
        items: asyncio.Queue[Any],
    ) -> None:
        """Reader task of one host: stream, apply the end rules, re-subscribe if asked."""
        backoff = Backoff()
        stub = self._stub(target)
        while True:
            call = stub.StreamImages(
                request, timeout=options.timeout, wait_for_ready=options.wait_for_ready
            )
            try:
                async for response in call:
                    await items.put(
                        (target, parse_response(response) if options.parse else response)
                    )
                    backoff.reset()
                code, details = grpc.StatusCode.OK, (await call.details()) or ""
            except grpc.aio.AioRpcError as exc:
                code, details = exc.code(), exc.details() or ""
                if code not in ENDING_CODES:
                    await items.put(_HostFailed(target, exc))
                    return
            except asyncio.CancelledError:
                call.cancel()
                raise
            except Exception as exc:
                call.cancel()
                await items.put(_HostFailed(target, exc))
                return
            self._registry.record_end(target, code, details)
            if not (options.reconnect and code in RETRY_CODES):
                await items.put(_HostEnded(target))
                return
            delay = backoff.next_delay()
            logger.info("re-subscribing to %s in %.1f s", target, delay)
            await asyncio.sleep(delay)

    async def upload_images(
        self,
        hosts: HostsArg,
        image_iterator: AsyncIterable[Any] | Iterable[Any],
        timeout: float | None = None,
    ) -> None:
        """Send every image to every host (one UploadImages call each); errors raise."""
        targets = await self.validate_daq_hosts(hosts)
        queues = {t: asyncio.Queue[Any](maxsize=UPLOAD_QUEUE_SIZE) for t in targets}

        async def requests(q: asyncio.Queue[Any]) -> AsyncIterator[Any]:
            while (request := await q.get()) is not _DONE:
                yield request

        calls = {
            t: asyncio.ensure_future(
                self._stub(t).UploadImages(requests(queues[t]), timeout=timeout)
            )
            for t in targets
        }

        async def fan_out(request: Any) -> None:
            for t in targets:
                if not calls[t].done():
                    put = asyncio.ensure_future(queues[t].put(request))
                    await asyncio.wait({put, calls[t]}, return_when=asyncio.FIRST_COMPLETED)
                    put.cancel()

        try:
            async for image in _aiter(image_iterator):
                await fan_out(upload_request(image))
        finally:
            await fan_out(_DONE)
            results = await asyncio.gather(*calls.values(), return_exceptions=True)
        for target, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                logger.error("upload to %s failed: %s", target, result)
                raise result


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
