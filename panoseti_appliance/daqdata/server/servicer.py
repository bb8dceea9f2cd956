"""The DaqData gRPC servicer: admission, streams, InitHpIo, Ping and uploads.

Status codes and detail strings are exactly those of docs/daqdata.md, "What clients can call":
clients match on them.
StreamImages sends pre-serialized responses (see `frame.Frame.response_bytes`), so this service is
registered with `add_to_server` here rather than the generated helper: the wire messages are the
same, only the server skips re-serializing a shared PanoImage for every subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import math
import os
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance.config.checks import (
    OutsideRoots,
    check_absolute,
    check_within_roots,
    format_module_range,
)
from panoseti_appliance.config.models import DaqDataConfig
from panoseti_appliance.daqdata.pixels import ENCODINGS, PACKED, RAW, Encoding
from panoseti_appliance.daqdata.server.frame import response_bytes as encode_response
from panoseti_appliance.daqdata.server.hpio import HpIo, HpIoSettings, HpIoState
from panoseti_appliance.daqdata.server.hub import Hub, Subscription
from panoseti_appliance.daqdata.server.upload import (
    MAX_MODULE_ID,
    InvalidUpload,
    upload_frames,
    viewed_frames,
)
from panoseti_appliance.products import MOVIE_PRODUCTS, PULSE_HEIGHT_PRODUCTS, DataProduct
from panoseti_appliance.runtime.bounded import Throttled, bounded, quote
from panoseti_appliance.runtime.logs import fields
from panoseti_appliance.runtime.requests import method, parse, register

log = logging.getLogger(__name__)
#: Bad requests are logged once a minute per kind, with a count, never one line each.
refusals = Throttled(log)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["DaqData"].full_name

# StreamImages writes responses it serialized itself (add_to_server registers no serializer).
StreamContext = grpc.aio.ServicerContext[pb.StreamImagesRequest, bytes]
InitContext = grpc.aio.ServicerContext[pb.InitHpIoRequest, pb.InitHpIoResponse]
M = TypeVar("M", bound=Message)
#: Most frames one every-frame response carries (max_frames_per_response is capped to it).
MAX_FRAMES_PER_RESPONSE = 256
#: How long a forced InitHpIo waits for the readers it ended to return.
READER_EXIT_WAIT_S = 2.0

SHUTTING_DOWN = "Server is shutting down."
CONFIGURING = "Server is being configured, please try again soon."
NOT_VALID = "hp_io task is not valid."
BELOW_MINIMUM = "update_interval_seconds is below server minimum."
NO_FLAGS = "At least one stream flag must be True."
NO_HASHPIPE = "Real DAQ software is not active."


@dataclass(frozen=True)
class StreamEnd:
    """Why the server ends a stream: the status it is ended with."""

    code: grpc.StatusCode
    details: str


class StreamStalled(Exception):
    """The client read nothing for stream_write_timeout_seconds; its stream is being ended."""


@dataclass(eq=False)
class Reader:
    """One open StreamImages call."""

    peer: str
    sub: Subscription
    task: asyncio.Task[Any] | None
    encoding: Encoding = PACKED
    done: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0
    lost: int = 0
    #: Loop time the write in progress began (None between writes), and whether the stall
    #: watcher gave up on it (`DaqDataServicer._watch_stalls`).
    writing_since: float | None = None
    stalled: bool = False


def peer_host(peer: str) -> str:
    """The client host of a gRPC peer ("ipv4:1.2.3.4:5" -> "ipv4:1.2.3.4", "ipv6:[::1]:5" ->
    "ipv6:[::1]"); every unix-socket client is the one host "unix"."""
    if peer.startswith("unix"):
        return "unix"
    host, sep, _ = peer.rpartition(":")
    return host if sep else peer


def requested_products(request: pb.StreamImagesRequest) -> list[DataProduct]:
    """img8+img16 for movie, ph256+ph1024 for pulse height."""
    out: list[DataProduct] = []
    if request.stream_movie_data:
        out.extend(MOVIE_PRODUCTS)
    if request.stream_pulse_height_data:
        out.extend(PULSE_HEIGHT_PRODUCTS)
    return out


def hashpipe_running() -> bool:
    """True if a process whose name is exactly `hashpipe` runs (reads /proc; call in a thread)."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if Path(entry.path, "comm").read_text().strip() == "hashpipe":
                    return True
    return False


class DaqDataServicer:
    """StreamImages, InitHpIo, Ping and UploadImages over one hub and one hp_io engine."""

    def __init__(
        self, cfg: DaqDataConfig, hub: Hub, engine: HpIo, data_roots: Sequence[Path]
    ) -> None:
        self.cfg = cfg
        #: Where a real-mode InitHpIo data_dir may lie (DaqDataConfig.data_roots).
        self.data_roots = list(data_roots)
        self.hub = hub
        self.engine = engine
        self.readers: dict[int, Reader] = {}
        self.shutting_down = False
        self.uploads_active = 0
        self.images_uploaded = 0
        self.uploads_refused: Counter[str] = Counter()  # by InvalidUpload.field
        self.responses_sent = 0
        self._reader_ids = 0
        # Final statuses of stalled streams still waiting for their client to read.
        self._ending: set[asyncio.Task[None]] = set()
        self._stall_watcher: asyncio.Task[None] | None = None
        engine.on_failure(self._hp_io_failed)

    # ---- shared admission ------------------------------------------------------------------

    async def _admit(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Checks 3-5 of StreamImages (and UploadImages' start): shutdown, configuring, idle."""
        if self.shutting_down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)
        state = self.engine.state
        if state in (HpIoState.STARTING, HpIoState.STOPPING):
            await context.abort(grpc.StatusCode.UNAVAILABLE, CONFIGURING)
        if state is HpIoState.IDLE:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, NOT_VALID)

    def end_readers(self, end: StreamEnd) -> list[Reader]:
        """End every open stream with `end`; returns the readers ended."""
        readers = list(self.readers.values())
        for reader in readers:
            reader.sub.end(end)
        return readers

    def _hp_io_failed(self, reason: str) -> None:
        self.end_readers(StreamEnd(grpc.StatusCode.UNAVAILABLE, f"hp_io stopped: {reason}"))

    async def shutdown(self, grace: float) -> None:
        """Refuse new calls and end every stream with UNAVAILABLE; wait up to `grace`."""
        self.shutting_down = True
        ended = self.end_readers(StreamEnd(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN))
        await self._wait_readers(ended, grace)
        if self._stall_watcher is not None:
            self._stall_watcher.cancel()

    @staticmethod
    async def _wait_readers(readers: list[Reader], timeout: float) -> None:
        """Wait until the readers' handlers returned; cancel the ones still stuck after that."""
        if not readers:
            return
        waits = [asyncio.create_task(r.done.wait()) for r in readers]
        _, pending = await asyncio.wait(waits, timeout=timeout)
        for task in pending:
            task.cancel()
        for reader in readers:
            if not reader.done.is_set() and reader.task is not None:
                log.warning("stream of %s did not end in %gs; cancelling it", reader.peer, timeout)
                reader.task.cancel()

    # ---- StreamImages ----------------------------------------------------------------------

    async def _admit_peer(self, context: StreamContext) -> None:
        """Refuse a stream beyond daqdata.max_streams_per_peer from one client host, so one host
        cannot take every slot of max_concurrent_rpcs from the others."""
        peer = context.peer()
        host = peer_host(peer)
        limit = self.cfg.max_streams_per_peer
        if sum(1 for r in self.readers.values() if peer_host(r.peer) == host) < limit:
            return
        refusals.warning(
            "streams per peer",
            "stream from %s refused: its host has %d streams open (daqdata.max_streams_per_peer)",
            bounded(peer, 200),
            limit,
        )
        await context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"Max streams per client host ({limit}) reached; close some or raise "
            "daqdata.max_streams_per_peer.",
        )

    async def StreamImages(self, request: pb.StreamImagesRequest, context: StreamContext) -> None:
        if not (request.stream_movie_data or request.stream_pulse_height_data):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, NO_FLAGS)
        if math.isnan(request.update_interval_seconds):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "update_interval_seconds is NaN; send a number (<= 0 means as fast as hp_io "
                "allows).",
            )
        encoding = request.pixel_encoding
        if encoding not in ENCODINGS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"pixel_encoding {encoding} is unknown; ask for PACKED, RAW, BLOSC_LZ4 or "
                "BLOSC_ZSTD.",
            )
        await self._admit(context)
        limit = self.cfg.max_concurrent_rpcs
        if len(self.readers) >= limit:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"Max clients ({limit}) reached."
            )
        await self._admit_peer(context)
        settings = self.engine.settings
        assert settings is not None  # RUNNING
        interval = min(
            max(request.update_interval_seconds, settings.update_interval_seconds),
            self.cfg.max_client_update_interval_seconds,
        )
        if encoding not in (PACKED, RAW):
            # Loaded once, off the loop, by the first stream that asks for compressed pixels.
            await asyncio.to_thread(importlib.import_module, "blosc2")
        queue = self.cfg.every_frame_queue_frames if request.every_frame else None
        sub = self.hub.subscribe(requested_products(request), request.module_ids, queue)
        reader = Reader(context.peer(), sub, asyncio.current_task(), encoding)
        self._reader_ids += 1
        reader_id = self._reader_ids
        self.readers[reader_id] = reader
        batch = min(max(request.max_frames_per_response, 1), MAX_FRAMES_PER_RESPONSE)
        log.info(
            "stream from %s joined: %s, %s, %s pixels, modules %s (%d readers)",
            reader.peer,
            "+".join(sorted(sub.products)),
            f"every frame, up to {batch} per response" if queue else f"interval {interval:g}s",
            pb.PanoImage.Encoding.Name(encoding),
            bounded(format_module_range(sub.modules), 200) if sub.modules else "all",
            len(self.readers),
            extra=fields(peer=reader.peer),
        )
        outcome = "client left"
        try:
            if queue:
                await self._stream_every_frame(reader, batch, context)
            else:
                await self._stream(reader, interval, context)
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except grpc.aio.AbortError:
            outcome = f"ended: {reader.sub.ended}"
            raise
        except StreamStalled:
            # Returning lets gRPC finish the call with the status already on its way.
            outcome = f"ended: {reader.sub.ended}"
        except Exception as exc:
            if context.done():
                # The client went away while we were ending the call; nothing left to tell.
                outcome = "client gone"
                return
            log.exception("stream of %s failed", reader.peer, extra=fields(peer=reader.peer))
            outcome = f"failed: {exc!r}"
            await context.abort(grpc.StatusCode.INTERNAL, f"stream failed: {exc!r}")
        finally:
            del self.readers[reader_id]
            self.hub.unsubscribe(sub)
            reader.done.set()
            log.info(
                "stream from %s left (%s) after %d images%s (%d readers)",
                reader.peer,
                outcome,
                reader.sent,
                f", {reader.lost} lost" if reader.lost else "",
                len(self.readers),
                extra=fields(peer=reader.peer),
            )

    async def _stream(self, reader: Reader, interval: float, context: StreamContext) -> None:
        """Snapshot ticks at t0 + k·interval: newest unseen frame per (module, dp), no bursts;
        batches are at least an interval apart."""
        loop = asyncio.get_running_loop()
        sub = reader.sub
        t0 = loop.time()
        tick = 0
        taken_at = -math.inf
        while True:
            await self._sleep_until(sub, t0 + tick * interval)
            await self._check_end(sub, context)
            frames = self.hub.take_new(sub)
            if frames:
                taken_at = loop.time()
                for frame in frames:
                    await self._write(
                        reader, encode_response((frame,), reader.encoding, 0), context
                    )
                    reader.sent += 1
                    self.responses_sent += 1
                    await self._check_end(sub, context)
                tick = max(tick + 1, math.ceil((loop.time() - t0) / interval))
            else:
                # Nothing new: sleep until a wanted frame arrives instead of waking every tick,
                # then send it at once unless the last batch is less than an interval old, and
                # count the ticks from there (waiting for the next tick of the old count would
                # delay every frame of a quiet source by up to an interval).
                await self.hub.wait_new(sub)
                await self._check_end(sub, context)
                t0, tick = max(loop.time(), taken_at + interval), 0

    async def _stream_every_frame(self, reader: Reader, batch: int, context: StreamContext) -> None:
        """Every queued frame in order, up to `batch` per response, each response telling how
        many frames the queue dropped before its first."""
        sub = reader.sub
        while True:
            await sub.wait_queued()
            await self._check_end(sub, context)
            frames, lost = sub.take_queued(batch)
            reader.lost += lost
            await self._write(reader, encode_response(frames, reader.encoding, lost), context)
            reader.sent += len(frames)
            self.responses_sent += 1

    async def _write(self, reader: Reader, response: bytes, context: StreamContext) -> None:
        """Write one response; a client that reads nothing for stream_write_timeout_seconds
        (gRPC's flow control then holds the write) is ended, freeing its slot.

        One watcher for all streams (`_watch_stalls`) times the writes instead of a timer per
        write: at thousands of responses a second, arming and cancelling a timer for each was a
        tenth of what a response costs the daemon.
        """
        timeout = self.cfg.stream_write_timeout_seconds
        reader.writing_since = asyncio.get_running_loop().time()
        if self._stall_watcher is None:
            self._stall_watcher = asyncio.create_task(self._watch_stalls())
        try:
            await context.write(response)
        except asyncio.CancelledError:
            if not reader.stalled:
                raise
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()
            end = StreamEnd(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"The client read nothing for {timeout:g} s; read faster or raise "
                "daqdata.stream_write_timeout_seconds.",
            )
            reader.sub.end(end)
            refusals.warning(
                "write timeout",
                "stream of %s ended: it read nothing for %g s "
                "(daqdata.stream_write_timeout_seconds)",
                bounded(reader.peer, 200),
                timeout,
            )
            await self._end_stalled(context, end)
            raise StreamStalled from None
        finally:
            reader.writing_since = None

    async def _watch_stalls(self) -> None:
        """While streams are open, end (cancel) every write that has waited longer than
        stream_write_timeout_seconds; `_write` turns that into the stream's final status."""
        timeout = self.cfg.stream_write_timeout_seconds
        loop = asyncio.get_running_loop()
        try:
            while self.readers:
                await asyncio.sleep(min(1.0, timeout / 4))
                now = loop.time()
                for reader in list(self.readers.values()):
                    since = reader.writing_since
                    if since is not None and now - since >= timeout and not reader.stalled:
                        reader.stalled = True
                        if reader.task is not None:
                            reader.task.cancel()
        finally:
            self._stall_watcher = None

    async def _end_stalled(self, context: StreamContext, end: StreamEnd) -> None:
        """Give a stalled stream its final status without waiting for it to be sent.

        abort() returns only once the status is sent, and HTTP/2 flow control holds it behind
        the responses this client does not read: awaited here, it would keep the slot as long
        as the client stalls. A task of its own sends it (the client sees it once it reads, or
        it goes with the connection); abort() marks the call ended before it first waits, so
        once that task has started, the handler can return.
        """
        started = asyncio.Event()
        task = asyncio.create_task(_send_end(context, end, started))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)
        await started.wait()

    @staticmethod
    async def _sleep_until(sub: Subscription, when: float) -> None:
        """Sleep until loop time `when`, or less if the subscription is ended meanwhile."""
        loop = asyncio.get_running_loop()
        if when <= loop.time() or sub.ended is not None:
            return
        sub.wakeup.clear()
        timer = loop.call_at(when, sub.wakeup.set)
        try:
            await sub.wakeup.wait()
        finally:
            timer.cancel()

    @staticmethod
    async def _check_end(sub: Subscription, context: StreamContext) -> None:
        end = sub.ended
        if isinstance(end, StreamEnd):
            await context.abort(end.code, end.details)

    # ---- InitHpIo --------------------------------------------------------------------------

    async def InitHpIo(
        self, request: pb.InitHpIoRequest, context: InitContext
    ) -> pb.InitHpIoResponse:
        settings = await self._validate_init(request, context)
        peer = context.peer()
        log.info(
            "InitHpIo from %s: %s%s",
            peer,
            settings.describe(),
            " (force)" if request.force else "",
            extra=fields(peer=peer),
        )
        # Queue for the lock (FIFO; a caller's deadline cancels only its wait). Once held, the
        # re-initialisation runs to the end even if the caller goes away.
        await self.engine.lock.acquire()
        task = asyncio.create_task(self._init_locked(settings, request.force, peer))
        task.add_done_callback(_log_failure)
        end = await asyncio.shield(task)
        if isinstance(end, StreamEnd):
            await context.abort(end.code, end.details)
        assert isinstance(end, pb.InitHpIoResponse)
        return end

    async def _validate_init(
        self, request: pb.InitHpIoRequest, context: InitContext
    ) -> HpIoSettings:
        """The checks of docs/daqdata.md, "InitHpIo", in its order, before any state change."""
        interval = request.update_interval_seconds
        if not math.isfinite(interval) or interval < self.cfg.min_hp_io_update_interval_seconds:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, BELOW_MINIMUM)
        data_dir = Path(request.data_dir)  # ignored while simulating
        if request.simulate_daq:
            problem = self.cfg.simulation_problem()
            if problem is not None:
                await context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION, f"simulation is not configured: {problem}"
                )
        else:
            data_dir = await self._check_data_dir(request.data_dir, context)
        if (
            self.cfg.require_hashpipe_process
            and not request.simulate_daq
            and not await asyncio.to_thread(hashpipe_running)
        ):
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, NO_HASHPIPE)
        too_big = [m for m in request.module_ids if m > MAX_MODULE_ID]
        if too_big:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"module_ids entry {too_big[0]} is above {MAX_MODULE_ID} (module ids are 16-bit).",
            )
        return HpIoSettings(data_dir, interval, request.simulate_daq, frozenset(request.module_ids))

    async def _check_data_dir(self, data_dir: str, context: InitContext) -> Path:
        """A real-mode data_dir must be given, absolute (never the daemon's working directory's),
        inside an allowed data root once resolved, and a directory; returns it resolved."""
        missing = f"data_dir {quote(data_dir)} does not exist."
        if not data_dir:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, missing)
        try:
            check_absolute(PurePosixPath(data_dir), "data_dir")
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, bounded(f"{exc}."))
        try:
            # Checked before the directory's existence, so no caller learns what exists elsewhere.
            real = await asyncio.to_thread(
                check_within_roots, PurePosixPath(data_dir), self.data_roots
            )
        except OutsideRoots as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, bounded(f"{exc}."))
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, bounded(f"{exc}."))
        if not await asyncio.to_thread(_is_dir, real):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, missing)
        return real

    async def _init_locked(
        self, settings: HpIoSettings, force: bool, peer: str
    ) -> pb.InitHpIoResponse | StreamEnd:
        """The re-initialisation proper; the caller acquired `engine.lock`, this releases it."""
        try:
            if self.shutting_down:
                return StreamEnd(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)
            readers = list(self.readers.values())
            if readers and not force:
                peers = ", ".join(r.peer for r in readers)
                return StreamEnd(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    bounded(
                        f"Cannot modify server state: {len(readers)} clients are streaming: "
                        f"[{peers}]"
                    ),
                )
            self.engine.begin_stopping()
            if readers:
                detail = f"hp_io reconfigured by InitHpIo(force=true) from {peer}; re-subscribe"
                ended = self.end_readers(StreamEnd(grpc.StatusCode.CANCELLED, detail))
                await self._wait_readers(ended, READER_EXIT_WAIT_S)
                log.info("InitHpIo from %s ended %d stream(s)", peer, len(ended))
            message = await self.engine.reconfigure(settings)
            return pb.InitHpIoResponse(success=not message, error_message=message)
        finally:
            self.engine.lock.release()

    # ---- Ping and UploadImages -------------------------------------------------------------

    async def Ping(
        self,
        request: empty_pb2.Empty,
        context: grpc.aio.ServicerContext[empty_pb2.Empty, empty_pb2.Empty],
    ) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    async def UploadImages(
        self,
        request_iterator: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext[bytes, empty_pb2.Empty],
    ) -> empty_pb2.Empty:
        """Each request read here from its bytes, which become the images' wire form
        (upload.viewed_frames, or upload.upload_frames for what the view leaves undecided):
        nothing is serialized again for the streams."""
        await self._admit(context)
        peer = context.peer()
        self.uploads_active += 1
        log.info("upload from %s started", peer, extra=fields(peer=peer))
        index = 0
        sink = self.engine.upload_sink
        max_header_bytes = self.cfg.max_upload_header_bytes
        try:
            async for data in request_iterator:
                try:
                    frames = viewed_frames(data, max_header_bytes)
                    if frames is None:
                        request = await parse(pb.UploadImageRequest, data, context)
                        frames = upload_frames(request, data, max_header_bytes)
                except InvalidUpload as exc:
                    at = index + exc.position
                    self.uploads_refused[exc.field] += 1
                    refusals.warning(
                        "upload", "upload from %s: image %d rejected: %s", peer, at, exc
                    )
                    await context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT, bounded(f"image {at}: {exc}")
                    )
                for frame in frames:
                    sink(frame)
                index += len(frames)
                self.images_uploaded += len(frames)
        finally:
            self.uploads_active -= 1
            log.info("upload from %s ended after %d images", peer, index, extra=fields(peer=peer))
        return empty_pb2.Empty()


async def _send_end(context: StreamContext, end: StreamEnd, started: asyncio.Event) -> None:
    """abort() for `_end_stalled`; `started` is set in the same step as abort() marks the call
    ended, so its waiter resumes only after that."""
    started.set()
    try:
        await context.abort(end.code, end.details)
    except grpc.aio.AbortError:
        pass  # the status was sent
    except Exception as exc:  # noqa: BLE001 - gRPC's own error once the client has gone
        log.debug("status of a stalled stream not sent: %r", exc)


def _is_dir(path: Path) -> bool:
    """Path.is_dir, False also where stat fails (permissions, a name too long)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _log_failure(task: asyncio.Task[Any]) -> None:
    """Log a re-initialisation that failed after its caller had gone (nobody awaits it then)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("InitHpIo failed: %r", task.exception())


def _identity(data: bytes) -> bytes:
    return data


def add_to_server(servicer: DaqDataServicer, server: grpc.aio.Server) -> None:
    """Register daqdata.DaqData; StreamImages' handler writes already-serialized responses, and
    every handler parses its requests itself (runtime.requests)."""

    register(
        server,
        SERVICE_NAME,
        {
            "StreamImages": method(
                pb.StreamImagesRequest, servicer.StreamImages, _identity, "writer"
            ),
            "InitHpIo": method(
                pb.InitHpIoRequest, servicer.InitHpIo, pb.InitHpIoResponse.SerializeToString
            ),
            "Ping": method(empty_pb2.Empty, servicer.Ping, empty_pb2.Empty.SerializeToString),
            "UploadImages": method(
                pb.UploadImageRequest,
                servicer.UploadImages,
                empty_pb2.Empty.SerializeToString,
                "client_stream_bytes",
            ),
        },
    )
