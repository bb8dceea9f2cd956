"""The UbloxControl gRPC servicer: InitF9t, PollMessage, CaptureUblox (docs/ublox.md).

State is one optional `UbxLink` (None means idle) plus the last successful plan. An asyncio lock
serialises everything that talks to the receiver (InitF9t, PollMessage, automatic re-init), so
one request's replies are never confused with another's. CaptureUblox only reads the link's
cache and subscriber queues.

The receiver is reached through a transport factory and its device checks through a DeviceStat
(`transport.py`): the serial port and the device node by default, the emulator's in-memory
receiver in tests (docs/ublox.md, "Transports").
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import grpc
from google.protobuf.struct_pb2 import Struct
from pyubx2 import UBX_MSGIDS
from pyubx2.ubxtypes_poll import UBX_PAYLOADS_POLL

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance._proto import ublox_control_pb2_grpc as pb_grpc
from panoseti_appliance.runtime.bounded import bounded, quote
from panoseti_appliance.runtime.logs import fields
from panoseti_appliance.runtime.supervisor import Policy, Supervised, Supervisor
from panoseti_appliance.ublox.parsed import UbxFrame, capture_response, error_response
from panoseti_appliance.ublox.server.decode import config_from_struct
from panoseti_appliance.ublox.server.f9t import (
    SUCCESS_MESSAGE,
    InitFailure,
    ReceiverInfo,
    poll_one,
    run_plan,
    valget,
)
from panoseti_appliance.ublox.server.link import (
    Dropped,
    Ended,
    LinkLost,
    Subscription,
    UbxLink,
)
from panoseti_appliance.ublox.server.patterns import (
    DEFAULT_LIMITS,
    PatternError,
    PatternLimits,
    Patterns,
    compile_patterns,
)
from panoseti_appliance.ublox.server.plan import (
    MAX_KEYS_PER_MESSAGE,
    POLL_LAYERS,
    F9tPlan,
    InvalidConfig,
    chunked,
    validate_config,
)
from panoseti_appliance.ublox.server.retries import ReinitRetries
from panoseti_appliance.ublox.server.transport import (
    DeviceStat,
    SerialTransport,
    TransportFactory,
    node_mode,
)
from panoseti_appliance.ublox.values import all_key_names, key_by_name

log = logging.getLogger(__name__)

NOT_INITIALISED = "F9T is not initialized or I/O is not running."
SHUTTING_DOWN = "Server is shutting down."
DEVICE_DISCONNECTED = "F9T device disconnected"
MAX_POLL_MESSAGES = 32
REOPEN_CHECK_S = 0.25

InitContext = grpc.aio.ServicerContext[pb.InitF9tRequest, pb.InitF9tResponse]
PollContext = grpc.aio.ServicerContext[pb.PollRequest, pb.PollResponse]
CaptureContext = grpc.aio.ServicerContext[pb.CaptureUbloxRequest, pb.CaptureUbloxResponse]

#: Pollable message identities (class CFG excluded) -> (class, id).
_NAME_TO_IDS: dict[str, tuple[int, int]] = {
    str(name): (raw[0], raw[1]) for raw, name in UBX_MSGIDS.items() if len(raw) == 2
}
POLLABLE_MESSAGES: dict[str, tuple[int, int]] = {
    name: _NAME_TO_IDS[name]
    for name in UBX_PAYLOADS_POLL
    if not name.startswith("CFG-") and name in _NAME_TO_IDS
}


class RpcAbort(Exception):
    """A gRPC status to end the call with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def abort(context: grpc.aio.ServicerContext[Any, Any], exc: RpcAbort) -> NoReturn:
    """End the call with the status; its message cut well under gRPC's 8 KiB metadata limit,
    over which the client would see RESOURCE_EXHAUSTED instead."""
    await context.abort(exc.code, bounded(exc.message))
    raise AssertionError("unreachable")


def cannot_connect(path: str, exc: BaseException) -> RpcAbort:
    """UNAVAILABLE naming the device by its absolute path and saying why it cannot be used."""
    return RpcAbort(
        grpc.StatusCode.UNAVAILABLE,
        f"Could not connect to device {os.path.abspath(path)}: {exc}",
    )


def device_mode(path: str, stat_mode: DeviceStat = node_mode) -> int:
    """The device node's st_mode; RpcAbort(UNAVAILABLE) when it is missing.

    Blocking (a stat of the node): run it off the loop.
    """
    try:
        return stat_mode(path)
    except (OSError, ValueError):  # what os.path.exists counts as absent
        raise RpcAbort(grpc.StatusCode.UNAVAILABLE, f"Device path {path} does not exist.") from None


def device_present(path: str, stat_mode: DeviceStat = node_mode) -> bool:
    """Whether the receiver's device node (or its symlink) is there to be opened.

    A node with no permission bits at all is one the kernel has removed: devtmpfs clears its
    mode before unlinking it, and a copy bind-mounted into a unit's private /dev (BindPaths=)
    stays behind in that state. Treated as present, re-opening it fails with EACCES and the
    daemon would warn about permissions instead of waiting for the receiver.
    """
    try:
        mode = stat_mode(path)
    except (OSError, ValueError):
        return False
    return stat.S_IMODE(mode) != 0


def _judge(request: pb.InitF9tRequest) -> F9tPlan:
    """InitF9t's config read and validated; InvalidConfig lists every problem."""
    cfg = config_from_struct(request.f9t_config) if request.HasField("f9t_config") else {}
    return validate_config(cfg)


def _struct(data: dict[str, Any]) -> Struct:
    out = Struct()
    out.update(data)
    return out


class UbloxControlServicer(pb_grpc.UbloxControlServicer):
    """Owns the receiver state and serves the three RPCs.

    `transport_factory` opens the receiver's port and `device_stat` answers whether its device
    node is there (and what it is); the two belong together: the serial port and the node's
    os.stat by default, `MemoryReceiver.factory` and `.stat` for the emulator's in-memory one.
    """

    def __init__(
        self,
        max_read_queue_size: int = 200,
        ack_timeout: float = 2.5,
        poll_timeout: float = 1.0,
        transport_factory: TransportFactory = SerialTransport,
        device_stat: DeviceStat = node_mode,
        pattern_limits: PatternLimits = DEFAULT_LIMITS,
    ) -> None:
        self.max_read_queue_size = max_read_queue_size
        self.pattern_limits = pattern_limits
        self.ack_timeout = ack_timeout
        self.poll_timeout = poll_timeout
        self._transport_factory = transport_factory
        self._device_stat = device_stat
        self._link: UbxLink | None = None
        #: Re-initialisations started by the daemon itself (after an unplug or a failure).
        self.reinit_attempts = 0
        self._plan: F9tPlan | None = None
        self._lock = asyncio.Lock()
        self._reopen: Supervised | None = None
        self._shutting_down = False
        self._closing: set[asyncio.Task[None]] = set()  # links being closed after device loss
        self._supervisor: Supervisor | None = None
        self._link_changed: Callable[[bool], None] = lambda up: None
        self._state_changed: Callable[[], None] = lambda: None
        self._frames_before = 0  # frames received by links already closed
        self._info: ReceiverInfo | None = None
        self._state_text = "idle (no InitF9t yet)"
        #: Set when the re-open loop made its first attempt, or found no device to try.
        self._attempted = asyncio.Event()
        #: Refused requests, one log line per kind a minute whatever a client sends.

    # ---- what the runner sees ---------------------------------------------------------------

    def attach(
        self,
        supervisor: Supervisor,
        link_changed: Callable[[bool], None],
        state_changed: Callable[[], None],
    ) -> None:
        """Run the re-open loop under the daemon's supervisor; report link up/down and every
        change of the receiver's state (health, STATUS=)."""
        self._supervisor = supervisor
        self._link_changed = link_changed
        self._state_changed = state_changed

    @property
    def _state(self) -> str:
        return self._state_text

    @_state.setter
    def _state(self, text: str) -> None:
        self._state_text = text
        self._state_changed()

    @property
    def device(self) -> str | None:
        return self._plan.device if self._plan is not None else None

    @property
    def frames_received(self) -> int:
        link = self._link
        return self._frames_before + (link.frames_received if link is not None else 0)

    @property
    def subscriber_count(self) -> int:
        link = self._link
        return link.subscriber_count if link is not None else 0

    @property
    def link_up(self) -> bool:
        """The receiver is initialised and its link open."""
        link = self._link
        return link is not None and link.alive

    def latest(self, identity: str) -> UbxFrame | None:
        """The newest frame of `identity` from the receiver now linked, if any."""
        link = self._link
        return link.latest(identity) if link is not None else None

    def describe_state(self) -> str:
        """The receiver's state in a few words (STATUS=)."""
        return self._state

    def wedged(self) -> str | None:
        link = self._link
        return link.wedged() if link is not None else None

    def _set_link(self, link: UbxLink | None) -> None:
        old, self._link = self._link, link
        if old is not None and old is not link:
            self._frames_before += old.frames_received
        if link is not None and self._info is not None:
            self._state = f"ready ({self._info.describe()})"
        self._link_changed(link is not None)

    # ---- state ------------------------------------------------------------------------------

    async def _stop_link(self, kind: str, message: str) -> None:
        """End streams with `kind`, stop the port owner and forget its cache."""
        link = self._link
        self._set_link(None)
        if link is not None:
            link.end_subscriptions(kind, message)
            await link.aclose(message)

    def _cancel_reopen(self) -> None:
        if self._reopen is not None and self._reopen.task is not asyncio.current_task():
            self._reopen.cancel()
        self._reopen = None

    async def _bring_up(self, plan: F9tPlan) -> ReceiverInfo:
        """Open the device and run the plan; on any failure the state is idle."""

        def lost(reason: str) -> None:
            if self._link is link:
                self._on_device_lost(reason)

        self._state = f"initialising {plan.device}"
        link = UbxLink(
            plan.device,
            plan.baud,
            asyncio.get_running_loop(),
            on_lost=lost,
            transport_factory=self._transport_factory,
        )
        try:
            await asyncio.to_thread(link.open)
        except BaseException as exc:
            self._state = f"failing: cannot open {plan.device}: {exc}"
            if isinstance(exc, link.device_errors):
                raise cannot_connect(plan.device, exc) from None
            raise
        try:
            info = await run_plan(link, plan, self.ack_timeout)
        except BaseException as exc:
            self._state = f"failing: {exc}"
            await link.aclose("initialisation failed")
            raise
        self._plan = plan
        self._info = info
        self._set_link(link)
        if link.lost_reason is not None:
            self._on_device_lost(link.lost_reason)
        return info

    def _on_device_lost(self, reason: str) -> None:
        """Called on the loop when the active link's device vanished: go idle, wait for it."""
        link = self._link
        self._set_link(None)
        device = link.device if link is not None else self.device
        self._state = f"lost ({reason}); waiting for {device}"
        log.error(
            "F9T device lost (%s); waiting for it to reappear", reason, extra=fields(device=device)
        )
        if link is not None:
            task = asyncio.get_running_loop().create_task(link.aclose(reason))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        if self._plan is not None and not self._shutting_down:
            self._start_reopen(self._plan)

    def _start_reopen(self, plan: F9tPlan) -> None:
        self._cancel_reopen()
        assert self._supervisor is not None, "attach(supervisor) first"
        self._reopen = self._supervisor.spawn(
            "F9T re-open", lambda: self._reopen_when_present(plan), Policy.RESTART, finite=True
        )

    async def _reopen_when_present(self, plan: F9tPlan) -> None:
        """Wait for the device path (or its symlink) and re-run the plan until it succeeds.

        Failures on a present device back off (retries.REOPEN_RETRY_S) and are logged sparingly
        (ReinitRetries); the device vanishing meanwhile starts the count afresh.
        """
        retries = ReinitRetries(plan.device)
        waiting_logged = False
        while not self._shutting_down:
            if not await self._present(plan.device):
                self._attempted.set()
                if not waiting_logged:
                    self._state = f"waiting for {plan.device} to appear"
                    log.info(
                        "waiting for F9T device %s to appear",
                        plan.device,
                        extra=fields(device=plan.device),
                    )
                    waiting_logged = True
                    retries = ReinitRetries(plan.device)
                await asyncio.sleep(REOPEN_CHECK_S)
                continue
            waiting_logged = False
            async with self._lock:
                if self._link is not None or self._shutting_down:
                    self._attempted.set()
                    return
                self.reinit_attempts += 1
                try:
                    info = await self._bring_up(plan)
                except (RpcAbort, InitFailure, LinkLost) as exc:
                    self._attempted.set()
                    if not await self._present(plan.device):
                        # Unplugged while being opened: the kernel clears the node's mode
                        # before removing it, so the open failed with EACCES. Wait for the
                        # receiver to come back, as for any unplug; nothing to warn about.
                        log.debug(
                            "F9T %s went away during re-init: %s",
                            plan.device,
                            exc,
                            extra=fields(device=plan.device),
                        )
                        continue
                    delay, level, line = retries.failed(str(exc))
                    self._state = f"failing: {exc}; retrying in {delay:g} s"
                    log.log(level, "%s", line, extra=fields(device=plan.device))
                else:
                    self._attempted.set()
                    log.info(
                        "%s", retries.succeeded(info.describe()), extra=fields(device=plan.device)
                    )
                    self._reopen = None
                    return
            await self._wait_while_present(plan.device, delay)

    async def _present(self, device: str) -> bool:
        return await asyncio.to_thread(device_present, device, self._device_stat)

    async def _wait_while_present(self, device: str, delay: float) -> None:
        """Sleep `delay` seconds, or less if the device path vanishes meanwhile."""
        deadline = asyncio.get_running_loop().time() + delay
        while await self._present(device) and not self._shutting_down:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(REOPEN_CHECK_S, remaining))

    async def start_with(self, plan: F9tPlan) -> None:
        """init_on_start: bring the configured chip up now, or as soon as it can be.

        Returns once the first attempt is over, or at once if the device is not there yet
        (READY=1 follows); the re-open loop keeps trying with back-off after a failure.
        """
        self._plan = plan
        self._attempted.clear()
        self._start_reopen(plan)
        await self._attempted.wait()

    async def shutdown(self) -> None:
        """Stop re-opening and end every stream with UNAVAILABLE "Server is shutting down."."""
        self._shutting_down = True
        self._cancel_reopen()
        link = self._link
        if link is not None:
            link.end_subscriptions("shutdown", SHUTTING_DOWN)

    async def close(self) -> None:
        """Close the port (after the server stopped) and wait for links closing after a loss."""
        await self._stop_link("shutdown", SHUTTING_DOWN)
        await asyncio.gather(*self._closing, return_exceptions=True)

    # ---- InitF9t ----------------------------------------------------------------------------

    async def InitF9t(self, request: pb.InitF9tRequest, context: InitContext) -> pb.InitF9tResponse:
        try:
            try:
                # Off the loop: a request may carry a list of 100 000 entries to judge.
                plan = await asyncio.to_thread(_judge, request)
            except InvalidConfig as exc:
                return pb.InitF9tResponse(
                    init_status=pb.InitF9tResponse.INVALID_CONFIG,
                    message=exc.summary(),
                    f9t_config=request.f9t_config,
                )
            return await self._init(plan, request.force_init, context)
        except RpcAbort as exc:
            await abort(context, exc)

    async def _init(self, plan: F9tPlan, force: bool, context: InitContext) -> pb.InitF9tResponse:
        echo = _struct(plan.effective_config)
        if self._shutting_down:
            raise RpcAbort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)
        mode = await asyncio.to_thread(device_mode, plan.device, self._device_stat)
        if not stat.S_ISCHR(mode):
            return pb.InitF9tResponse(
                init_status=pb.InitF9tResponse.INVALID_CONFIG,
                message=bounded(f"Device path {plan.device} is not a character device"),
                f9t_config=echo,
            )
        remaining = context.time_remaining()
        try:
            await asyncio.wait_for(self._lock.acquire(), remaining)
        except TimeoutError:
            raise RpcAbort(
                grpc.StatusCode.DEADLINE_EXCEEDED, "another InitF9t is still running"
            ) from None
        try:
            link = self._link
            n = link.subscriber_count if link is not None else 0
            if n > 0 and not force:
                raise RpcAbort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Cannot initiate F9T while {n} clients are connected. Use force_init=True "
                    "to force initialization and cancel all active clients.",
                )
            self._cancel_reopen()
            self._plan = None
            await self._stop_link(
                "reinit", f"F9T re-initialised by InitF9t from {context.peer()}; re-subscribe"
            )
            try:
                info = await self._bring_up(plan)
            except InitFailure as exc:
                log.warning(
                    "InitF9t from %s failed: %s",
                    context.peer(),
                    exc,
                    extra=fields(device=plan.device, peer=context.peer()),
                )
                return pb.InitF9tResponse(
                    init_status=pb.InitF9tResponse.FAILURE, message=str(exc), f9t_config=echo
                )
            except LinkLost as exc:
                raise RpcAbort(
                    grpc.StatusCode.UNAVAILABLE, f"{DEVICE_DISCONNECTED}: {exc}"
                ) from None
            return pb.InitF9tResponse(
                init_status=pb.InitF9tResponse.SUCCESS,
                message=f"{SUCCESS_MESSAGE}\n{info.describe()}",
                f9t_config=echo,
            )
        finally:
            self._lock.release()

    # ---- PollMessage ------------------------------------------------------------------------

    async def PollMessage(self, request: pb.PollRequest, context: PollContext) -> pb.PollResponse:
        try:
            return await self._poll(list(request.patterns))
        except RpcAbort as exc:
            await abort(context, exc)

    def _compile(self, patterns: list[str]) -> Patterns:
        try:
            return compile_patterns(patterns, self.pattern_limits)
        except PatternError as exc:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None

    def _pollable(self, patterns: list[str]) -> tuple[list[str], list[str]]:
        """The message types and CFG keys the patterns select."""
        compiled = self._compile(patterns)
        return compiled.select(POLLABLE_MESSAGES), compiled.select(all_key_names())

    async def _poll(self, patterns: list[str]) -> pb.PollResponse:
        if not patterns:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, "patterns: give at least one pattern")
        # Off the loop: up to `max_patterns` patterns against some 1500 names.
        names, keys = await asyncio.to_thread(self._pollable, patterns)
        if not names and not keys:
            raise RpcAbort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"patterns {quote(patterns)} select no pollable message and no CFG key",
            )
        if len(names) > MAX_POLL_MESSAGES:
            raise RpcAbort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"patterns select {len(names)} message types; at most {MAX_POLL_MESSAGES} per poll",
            )
        async with self._lock:
            link = self._link
            if link is None or not link.alive:
                raise RpcAbort(grpc.StatusCode.FAILED_PRECONDITION, NOT_INITIALISED)
            out = pb.PollResponse()
            try:
                for name in names:
                    frame = await poll_one(link, *POLLABLE_MESSAGES[name], self.poll_timeout)
                    out.gnss_packet.append(
                        capture_response(frame)
                        if frame is not None
                        else error_response(f"no answer within {self.poll_timeout:.1f} s", name)
                    )
                for chunk in chunked(keys, MAX_KEYS_PER_MESSAGE):
                    cfg_keys = [key_by_name(k) for k in chunk]
                    got, err = await valget(link, POLL_LAYERS["RAM"], cfg_keys, self.ack_timeout)
                    out.gnss_packet.append(
                        capture_response(got)
                        if got is not None
                        else error_response(
                            f"CFG-VALGET {err} for keys {', '.join(chunk)}", "CFG-VALGET"
                        )
                    )
            except LinkLost as exc:
                raise RpcAbort(
                    grpc.StatusCode.UNAVAILABLE, f"{DEVICE_DISCONNECTED}: {exc}"
                ) from None
            return out

    # ---- CaptureUblox -----------------------------------------------------------------------

    async def CaptureUblox(
        self, request: pb.CaptureUbloxRequest, context: CaptureContext
    ) -> AsyncIterator[pb.CaptureUbloxResponse]:
        try:
            patterns = list(request.patterns)
            compiled = await asyncio.to_thread(self._compile, patterns)
            link = self._link
            if self._shutting_down:
                raise RpcAbort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)
            if link is None or not link.alive:
                raise RpcAbort(grpc.StatusCode.FAILED_PRECONDITION, NOT_INITIALISED)
        except RpcAbort as exc:
            await abort(context, exc)
        sub = link.subscribe(self.max_read_queue_size)
        log.info(
            "CaptureUblox from %s: patterns %s",
            context.peer(),
            quote(patterns, 300),
            extra=fields(device=link.device, peer=context.peer()),
        )
        try:
            for frame in sub.cached:
                if compiled.match(frame.identity):
                    yield capture_response(frame)
            async for response in self._live(sub, compiled):
                yield response
            ended = sub.ended
            assert ended is not None
        finally:
            link.unsubscribe(sub)
        if ended.kind == "lost":
            yield error_response(f"device disconnected: {ended.message}")
            await context.abort(grpc.StatusCode.UNAVAILABLE, DEVICE_DISCONNECTED)
        elif ended.kind == "reinit":
            await context.abort(grpc.StatusCode.CANCELLED, ended.message)
        else:
            await context.abort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)

    async def _live(
        self, sub: Subscription, compiled: Patterns
    ) -> AsyncIterator[pb.CaptureUbloxResponse]:
        while True:
            item = await sub.get()
            if isinstance(item, Ended):
                return
            if isinstance(item, Dropped):
                yield error_response(f"dropped {item.count} frames (client too slow)")
            elif isinstance(item, UbxFrame) and compiled.match(item.identity):
                yield capture_response(item)
