"""UbloxControl against hostile requests: the real daemon and the pty emulator (docs/ublox.md,
"Limits and hostile input").

Each case sends what a careless or malicious client could and checks what every call must keep
to: it ends with a documented status (never UNKNOWN or INTERNAL), its message stays well under
gRPC's 8 KiB metadata limit, and the daemon answers a health check within 1 s while it runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance._proto import ublox_control_pb2_grpc as pb_grpc
from panoseti_appliance.grpcstubs import health_stub
from panoseti_appliance.ublox.client import to_struct
from tests.daemons import Daemon
from tests.f9t_strategies import KEY_NAMES, SETTINGS, key_settings, struct_values
from tests.integration.test_ublox_init import (
    daemon,
    emulator,
    f9t_cfg,
    init_ok,
    stub,
    ubloxcontrol,
)

__all__ = ["daemon", "emulator", "f9t_cfg", "stub"]  # fixtures used by this module

Code = grpc.StatusCode
#: What any call may end with (docs/ublox.md, "Status codes"); never UNKNOWN or INTERNAL.
DOCUMENTED = {
    Code.OK,
    Code.INVALID_ARGUMENT,
    Code.FAILED_PRECONDITION,
    Code.UNAVAILABLE,
    Code.DEADLINE_EXCEEDED,
    Code.CANCELLED,
}
#: gRPC's default limit for a status message (metadata) is 8 KiB.
METADATA_LIMIT = 8192
HEALTH_S = 1.0
CALL_S = 10.0
#: Longest log line a request may cause (the daemon's own lines are far shorter).
LOG_LINE_LIMIT = 4096
CAPTURE = "/ubloxcontrol.UbloxControl/CaptureUblox"
UNARY = ("/ubloxcontrol.UbloxControl/InitF9t", "/ubloxcontrol.UbloxControl/PollMessage")
RAW = {"raw-init": UNARY[0], "raw-poll": UNARY[1], "raw-capture": CAPTURE}
#: Patterns that make a backtracking matcher take exponential time on a CFG key name.
BACKTRACKING = [r"(\w+)+!", r"(.*)*x", r"(\w*)*!"]
NESTED = "(" * 5000 + ")" * 5000

Outcome = tuple[grpc.StatusCode, str]


def outcome(call: Callable[[], Any]) -> Outcome:
    """The status and message a call ends with: an InitF9t answer's message when OK."""
    try:
        reply = call()
    except grpc.RpcError as err:
        return err.code(), err.details() or ""
    return Code.OK, reply.message if isinstance(reply, pb.InitF9tResponse) else ""


def first_of_stream(stream: Any) -> Any:
    """The first item of a server stream, then the stream cancelled."""
    try:
        return next(iter(stream))
    finally:
        stream.cancel()


def while_healthy(target: str, call: Callable[[], Any]) -> Outcome:
    """Run `call` in a thread, checking the daemon's health (1 s deadline each) until it ends.

    A daemon whose loop is held by the call misses a check: DEADLINE_EXCEEDED fails the test.
    """
    with (
        ThreadPoolExecutor(1) as pool,
        grpc.insecure_channel(target) as channel,
    ):
        running = pool.submit(outcome, call)
        health = health_stub(channel)
        while True:
            reply = health.Check(health_pb2.HealthCheckRequest(), timeout=HEALTH_S)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            if running.done():
                return running.result()


def assert_well_behaved(result: Outcome) -> None:
    code, message = result
    assert code in DOCUMENTED, result
    assert len(message.encode()) < METADATA_LIMIT, (code, message[:200], len(message))


def init_call(
    stub: pb_grpc.UbloxControlStub, cfg: dict[str, Any], force: bool = False
) -> Callable[[], Any]:
    request = pb.InitF9tRequest(f9t_config=to_struct(cfg), force_init=force)
    return lambda: stub.InitF9t(request, timeout=CALL_S)


def poll_call(stub: pb_grpc.UbloxControlStub, patterns: list[str]) -> Callable[[], Any]:
    return lambda: stub.PollMessage(pb.PollRequest(patterns=patterns), timeout=CALL_S)


def capture_call(
    stub: pb_grpc.UbloxControlStub, patterns: list[str], timeout: float = CALL_S
) -> Callable[[], Any]:
    request = pb.CaptureUbloxRequest(patterns=patterns)
    return lambda: first_of_stream(stub.CaptureUblox(request, timeout=timeout))


def raw_call(
    channel: grpc.Channel, method: str, body: bytes, timeout: float = CALL_S
) -> Callable[[], Any]:
    """A call of `method` with `body` sent as it is, as a client with another protobuf could."""
    if method == CAPTURE:
        stream: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(method)
        return lambda: first_of_stream(stream(body, timeout=timeout))
    rpc: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
    return lambda: rpc(body, timeout=timeout)


def log_lines_longer_than(daemon: Daemon, limit: int) -> list[int]:
    return [len(line) for line in daemon.log().splitlines() if len(line) > limit]


# ---- patterns ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", BACKTRACKING)
def test_a_backtracking_pattern_is_matched_in_linear_time(
    daemon: Daemon, stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any], pattern: str
) -> None:
    init_ok(stub, f9t_cfg)
    # Against each of the 1343 CFG key names: a backtracking matcher holds the loop for minutes.
    code, message = while_healthy(daemon.target, poll_call(stub, [pattern]))
    assert code == Code.INVALID_ARGUMENT
    assert "select no pollable message and no CFG key" in message
    code, _ = while_healthy(daemon.target, capture_call(stub, [pattern, "TIM"]))
    assert code == Code.OK


def test_deeply_nested_groups_are_refused_naming_the_pattern(
    daemon: Daemon, stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any]
) -> None:
    init_ok(stub, f9t_cfg)
    for call in (poll_call(stub, [NESTED]), capture_call(stub, ["TIM", NESTED])):
        code, message = while_healthy(daemon.target, call)
        assert code == Code.INVALID_ARGUMENT, message
        assert message.startswith("invalid pattern '(((("), message
        assert len(message) < 1024


def test_pattern_limits_and_what_re2_refuses(
    daemon: Daemon, stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any]
) -> None:
    init_ok(stub, f9t_cfg)
    cases = [
        (["TIM"] * 65, "65 patterns; at most 64 per request"),
        (["TIM" + "-" * 254], "invalid pattern 'TIM----"),
        (["TIM" + "-" * 254], "is 257 characters long; at most 256"),
        ([r"(TIM)-\1"], r"invalid pattern '(TIM)-\\1': invalid escape sequence: \1"),
        (["TIM(?=-TP)"], "invalid pattern 'TIM(?=-TP)': invalid perl operator: (?="),
        ([r"\pL{1000}"], "pattern too large"),
    ]
    for patterns, text in cases:
        for call in (poll_call(stub, patterns), capture_call(stub, patterns)):
            code, message = while_healthy(daemon.target, call)
            assert code == Code.INVALID_ARGUMENT, (patterns[0][:20], code, message)
            assert text in message, (text, message)
    # At the limits, patterns are served.
    code, message = while_healthy(daemon.target, capture_call(stub, ["TIM" + "-?" * 126] * 64))
    assert code == Code.OK, message


def test_a_huge_pattern_list_gives_a_bounded_message_and_log_line(
    daemon: Daemon, stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any]
) -> None:
    init_ok(stub, f9t_cfg)
    patterns = ["TIM"] * 100_000
    for call in (poll_call(stub, patterns), capture_call(stub, patterns)):
        code, message = while_healthy(daemon.target, call)
        assert code == Code.INVALID_ARGUMENT, message
        assert len(message) < 1024
    assert log_lines_longer_than(daemon, LOG_LINE_LIMIT) == []


# ---- InitF9t ----------------------------------------------------------------------------------


@pytest.fixture
def changed_cfg(f9t_cfg: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
    """The working config with a case's change (the indirect parameter) merged over it."""
    return {**f9t_cfg, **request.param}


def invalid_config_message(stub: pb_grpc.UbloxControlStub, cfg: dict[str, Any]) -> str:
    """The message of InitF9t with `cfg`, which must be refused with init_status INVALID_CONFIG."""
    reply = stub.InitF9t(pb.InitF9tRequest(f9t_config=to_struct(cfg)), timeout=60)
    assert reply.init_status == pb.InitF9tResponse.INVALID_CONFIG, reply.message[:300]
    return reply.message


@pytest.mark.parametrize(
    ("changed_cfg", "problem"),
    [
        ({"baud": math.inf}, "baud: inf is not a standard baud rate"),
        ({"position": {"lat_deg": -math.inf, "lon_deg": 0, "height_m": 0}}, "position.lat_deg: "),
        ({"position": {"lat_deg": 1, "lon_deg": 2, "height_m": math.nan}}, "position.height_m: "),
        (
            {"cfg_key_settings": [{"key": "CFG_TP_ANT_CABLEDELAY", "value": math.nan}]},
            "cfg_key_settings[0].value: CFG_TP_ANT_CABLEDELAY: nan is not an integer",
        ),
        (
            {"cfg_key_settings": [{"key": "CFG_TMODE_ECEF_X", "value": math.inf}]},
            "cfg_key_settings[0].value: CFG_TMODE_ECEF_X: inf is not an integer",
        ),
    ],
    indirect=["changed_cfg"],
)
def test_a_non_finite_number_is_invalid_config_naming_the_field(
    daemon: Daemon, stub: pb_grpc.UbloxControlStub, changed_cfg: dict[str, Any], problem: str
) -> None:
    code, message = while_healthy(daemon.target, init_call(stub, changed_cfg))
    assert code == Code.OK
    assert problem in message, message
    assert problem in invalid_config_message(stub, changed_cfg)


@pytest.mark.parametrize(
    ("changed_cfg", "text"),
    [
        ({"apply_to_layers": ["RAM"] * 100_000}, "apply_to_layers[1]: RAM appears more than once"),
        ({"cfg_key_settings": [0] * 100_000}, "cfg_key_settings: 100000 entries, but there"),
        ({"cfg_key_settings": [0] * 1000}, "… and 9"),
        ({"f9t_uid": "A" * 1_000_000}, "f9t_uid: 'AAAA"),
        ({"device": "/dev/" + "x" * 1_000_000}, "device: '/dev/xxx"),
        ({"cfg_key_settings": [{"key": "CFG_" * 100_000, "value": 1}]}, "cfg_key_settings[0].key"),
    ],
    indirect=["changed_cfg"],
)
def test_a_huge_value_gives_a_bounded_message_and_log_line(
    daemon: Daemon, stub: pb_grpc.UbloxControlStub, changed_cfg: dict[str, Any], text: str
) -> None:
    message = invalid_config_message(stub, changed_cfg)
    assert text in message, message[:300]
    assert len(message) < METADATA_LIMIT
    assert log_lines_longer_than(daemon, LOG_LINE_LIMIT) == []


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def nested_struct(depth: int) -> bytes:
    """A Struct `{"a": {"a": … {}}}` nested `depth` deep, written by hand: protobuf refuses to
    build (or read) one this deep."""
    struct = b""
    for _ in range(depth):
        value = field(5, struct)  # Value.struct_value
        struct = field(1, field(1, b"a") + field(2, value))  # Struct.fields entry
    return struct


def test_undecodable_requests_are_invalid_argument_and_logged_once(
    daemon: Daemon, stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any]
) -> None:
    init_ok(stub, f9t_cfg)
    bodies = [
        field(1, nested_struct(200)),  # InitF9tRequest.f9t_config, too deep
        field(1, nested_struct(5000)),
        b"\x0a\x05\xff\xfe\xfd",  # a truncated field
        field(1, b"\xff\xfe"),  # a string (pattern) that is not UTF-8
    ]
    with daemon.channel() as channel:
        for _ in range(3):
            for body in bodies:
                for method in (*UNARY, CAPTURE):
                    result = while_healthy(daemon.target, raw_call(channel, method, body))
                    assert result[0] == Code.INVALID_ARGUMENT, (method, body[:8], result)
                    assert_well_behaved(result)
    log = daemon.log()
    assert "Traceback" not in log
    undecodable = [line for line in log.splitlines() if " request from " in line]
    assert 1 <= len(undecodable) <= 3, undecodable  # one line per method, whatever the count


# ---- everything at once, as a property ---------------------------------------------------------

REGEX_BITS = [
    r"(\w+)+",
    "(.*)*",
    "(a|a)*",
    "(",
    ")",
    "[",
    "]",
    "\\",
    "(?=",
    "(?<=x)",
    r"\1",
    "{1000}",
    "{2,1}",
    "*",
    "+?",
    ".",
    "$",
    "^",
    "|",
    "(?P<n>",
    r"\pL",
    r"\Z",
    "\x00",
    "é",
]
NAMES = ["TIM", "TIM-TP", "NAV-TIMEUTC", "MON-VER", "SEC-UNIQID", "CFG_TP_", *KEY_NAMES[:20]]
pattern = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(REGEX_BITS + NAMES), max_size=10).map("".join),
    st.sampled_from(NAMES + BACKTRACKING + [NESTED]),
    st.integers(200, 20_000).map(lambda n: "(" * (n // 2) + ")" * (n // 2)),
    st.integers(200, 20_000).map(lambda n: "a" * n),
)
patterns = st.one_of(
    st.lists(pattern, max_size=6),
    st.integers(60, 20_000).map(lambda n: ["T"] * n),
)


# The deepest value nested below: protobuf's decoder refuses a Struct with 33 levels of dicts
# under the config (fewer than that with lists), and a key setting wraps its value in two more.
NEST_DEPTH = 28


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def nest(value: Any, levels: int) -> Any:
    """`value` wrapped in `levels` alternating lists and dicts, fewer if that would take it past
    NEST_DEPTH: a value protobuf cannot build would fail in the test, not in the daemon."""
    for n in range(min(levels, NEST_DEPTH - depth(value))):
        value = {"a": value} if n % 2 else [value]
    return value


value = struct_values(longest_text=200_000, max_leaves=10)
value = st.one_of(
    value,
    # As deep as a client's protobuf builds a Struct; deeper ones are sent as raw bytes below.
    st.tuples(value, st.integers(1, NEST_DEPTH)).map(lambda v: nest(*v)),
    st.integers(1000, 100_000).map(lambda n: [0] * n),
)
config_change = st.fixed_dictionaries(
    {},
    optional={
        **{name: value for name in SETTINGS},
        "cfg_key_settings": key_settings(value),
        "extra": value,
    },
)
raw_body = st.one_of(
    st.binary(max_size=64),
    st.integers(40, 3000).map(lambda n: field(1, nested_struct(n))),
    st.binary(min_size=1, max_size=8).map(lambda b: field(1, b)),
)
hostile = st.one_of(
    st.tuples(st.just("init"), config_change),
    st.tuples(st.just("poll"), patterns),
    st.tuples(st.just("capture"), patterns),
    st.tuples(st.sampled_from(["raw-init", "raw-poll", "raw-capture"]), raw_body),
)


@dataclass(repr=False)
class Fast:
    """A daemon that waits only 0.1 s for each polled message (a poll of 32 message types the
    emulator does not answer takes seconds, not half a minute), a stub and a good config."""

    daemon: Daemon
    stub: pb_grpc.UbloxControlStub
    cfg: dict[str, Any]

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        return f"Fast({self.daemon.target})"


@pytest.fixture
def fast(tmp_path: Path, f9t_cfg: dict[str, Any]) -> Iterator[Fast]:
    with ubloxcontrol(tmp_path / "fast", {"poll_timeout_seconds": 0.1}) as (daemon, stub):
        yield Fast(daemon, stub, f9t_cfg)


def receiver_up(daemon: Daemon) -> bool:
    return daemon.health("ubloxcontrol.UbloxControl") == health_pb2.HealthCheckResponse.SERVING


@settings(
    max_examples=150,
    deadline=None,
    # One daemon and one emulator for all examples: that is the point.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(case=hostile)
def test_every_rpc_survives_hostile_input(fast: Fast, case: tuple[str, Any]) -> None:
    daemon, stub = fast.daemon, fast.stub
    kind, data = case
    if kind in ("poll", "capture") and not receiver_up(daemon):
        # Bring the receiver back for the patterns to meet frames. A hostile config that passed
        # validation may have left it configured oddly; if this fails too, the call below is
        # still judged (FAILED_PRECONDITION is a documented answer).
        outcome(init_call(stub, fast.cfg, force=True))
    logged = len(daemon.log())
    with daemon.channel() as channel:
        call: Callable[[], Any]
        if kind == "init":
            call = init_call(stub, {**fast.cfg, **data})
        elif kind == "poll":
            call = poll_call(stub, data)
        elif kind == "capture":
            call = capture_call(stub, data, timeout=1.0)
        else:
            call = raw_call(channel, RAW[kind], data, timeout=1.0)
        result = while_healthy(daemon.target, call)
    assert_well_behaved(result)
    new_lines = daemon.log()[logged:].splitlines()
    assert [len(line) for line in new_lines if len(line) > LOG_LINE_LIMIT] == []
    assert not [line for line in new_lines if re.search(r"Traceback|Exception", line)]
