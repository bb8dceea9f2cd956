"""CaptureUblox, PollMessage, force_init and unplug/replug against the emulator."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance._proto import ublox_control_pb2_grpc as pb_grpc
from panoseti_appliance.ublox.emulator import F9tEmulator
from tests.daemons import rpc_details
from tests.integration.test_ublox_init import (
    UID,
    capture_streams,
    daemon,
    emulator,
    f9t_cfg,
    init,
    init_ok,
    key_id,
    rpc_error,
    stub,
    ubloxcontrol,
    wait_for,
)

__all__ = ["daemon", "emulator", "f9t_cfg", "stub"]  # fixtures used by this module

DATA = pb.CaptureUbloxResponse.DATA
ERROR = pb.CaptureUbloxResponse.ERROR
STREAM_TIMEOUT = 60.0


def rx_time(r: pb.CaptureUbloxResponse) -> float:
    return r.pkt_unix_timestamp.seconds + r.pkt_unix_timestamp.nanos / 1e9


def take(stream: Any, n: int) -> list[pb.CaptureUbloxResponse]:
    out = []
    for response in stream:
        out.append(response)
        if len(out) == n:
            break
    return out


def test_capture_needs_an_initialised_receiver(stub: pb_grpc.UbloxControlStub) -> None:
    err = rpc_error(lambda: take(stub.CaptureUblox(pb.CaptureUbloxRequest(), timeout=10), 1))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details() == "F9T is not initialized or I/O is not running."


def test_bad_regex_is_invalid_argument(
    stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any]
) -> None:
    init_ok(stub, f9t_cfg)
    err = rpc_error(lambda: take(stub.CaptureUblox(pb.CaptureUbloxRequest(patterns=["("])), 1))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_details(err) == "invalid pattern '(': missing ): ("


def test_cache_first_then_live_and_no_stray_acks(
    stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any]
) -> None:
    init_ok(stub, f9t_cfg)
    # Let both periodic types reach the cache, then subscribe.
    first = take(stub.CaptureUblox(pb.CaptureUbloxRequest(), timeout=STREAM_TIMEOUT), 4)
    assert {r.name for r in first} >= {"TIM-TP", "NAV-TIMEUTC"}
    responses = take(stub.CaptureUblox(pb.CaptureUbloxRequest(), timeout=STREAM_TIMEOUT), 12)
    names = [r.name for r in responses]
    # VALSET/VALGET replies were consumed by InitF9t, never cached or streamed.
    assert not {"ACK-ACK", "ACK-NAK", "CFG-VALGET"} & set(names)
    assert all(r.type == DATA for r in responses)
    # The cache comes first: the newest frame of each type, each once...
    cached, live = responses[:2], responses[2:]
    assert sorted(r.name for r in cached) == ["NAV-TIMEUTC", "TIM-TP"]
    # ...then live frames in arrival order, none older than the cache and none repeated.
    times = [rx_time(r) for r in live]
    assert times == sorted(times)
    assert min(times) >= max(rx_time(r) for r in cached)
    assert len({(r.payload, rx_time(r)) for r in responses}) == len(responses)
    for r in responses:
        data = MessageToDict(r.parsed_data)
        assert data["identity"] == r.name
        assert r.payload[:2] == b"\xb5\x62"
        assert data["length"] == len(r.payload) - 8


def test_patterns_filter_by_match_at_the_start(
    stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any]
) -> None:
    init_ok(stub, f9t_cfg)
    tim = take(stub.CaptureUblox(pb.CaptureUbloxRequest(patterns=["TIM"]), timeout=60), 5)
    assert {r.name for r in tim} == {"TIM-TP"}
    nav = take(
        stub.CaptureUblox(pb.CaptureUbloxRequest(patterns=["TP", "NAV-TIME"]), timeout=60), 5
    )
    assert {r.name for r in nav} == {"NAV-TIMEUTC"}
    qerr = MessageToDict(tim[-1].parsed_data)["qErr"]
    assert isinstance(qerr, float)


def test_busy_without_force_then_force_ends_streams(
    stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any]
) -> None:
    init_ok(stub, f9t_cfg)
    old = stub.CaptureUblox(pb.CaptureUbloxRequest(patterns=["TIM-TP"]), timeout=STREAM_TIMEOUT)
    assert next(old).name == "TIM-TP"
    err = rpc_error(lambda: init(stub, f9t_cfg))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details() == (
        "Cannot initiate F9T while 1 clients are connected. Use force_init=True to force "
        "initialization and cancel all active clients."
    )
    init_ok(stub, f9t_cfg, force=True)
    ended = rpc_error(lambda: [r for r in old])
    assert ended.code() == grpc.StatusCode.CANCELLED
    assert "F9T re-initialised by InitF9t from " in rpc_details(ended)
    assert rpc_details(ended).endswith("; re-subscribe")
    # The cache was cleared: a new stream starts with frames received after the re-init.
    fresh = stub.CaptureUblox(pb.CaptureUbloxRequest(patterns=["TIM-TP"]), timeout=STREAM_TIMEOUT)
    assert next(fresh).name == "TIM-TP"
    fresh.cancel()

    # A cancelled stream no longer counts as busy.
    def not_busy() -> bool:
        try:
            return init(stub, f9t_cfg).init_status == pb.InitF9tResponse.SUCCESS
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            return False

    wait_for(not_busy, what="the cancelled stream to be forgotten")


def test_poll_messages_and_keys(
    stub: pb_grpc.UbloxControlStub, emulator: F9tEmulator, f9t_cfg: dict[str, Any]
) -> None:
    init_ok(stub, f9t_cfg)
    reply = stub.PollMessage(
        pb.PollRequest(patterns=["MON-VER", "SEC-UNIQID", "CFG_TP_FREQ_TP"]), timeout=60
    )
    entries = list(reply.gnss_packet)
    assert [e.name for e in entries] == ["MON-VER", "SEC-UNIQID", "CFG-VALGET"]
    assert all(e.type == DATA for e in entries)
    uid = MessageToDict(entries[1].parsed_data)["uniqueId"]
    assert int(uid) == 0xDF03A241BC
    keys = MessageToDict(entries[2].parsed_data)
    assert keys["layer"] == 0
    assert keys["CFG_TP_FREQ_TP1"] == 1
    assert keys["CFG_TP_FREQ_TP2"] == 10_000_000
    assert "CFG_TP_FREQ_TP3" in keys


def test_poll_without_answer_and_nak_give_error_entries(
    stub: pb_grpc.UbloxControlStub, emulator: F9tEmulator, f9t_cfg: dict[str, Any]
) -> None:
    init_ok(stub, f9t_cfg)
    emulator.nak_keys = {key_id("CFG_TP_FREQ_TP1")}
    reply = stub.PollMessage(pb.PollRequest(patterns=["MON-HW$", "CFG_TP_FREQ_TP1$"]), timeout=60)
    entries = list(reply.gnss_packet)
    assert [(e.type, e.name) for e in entries] == [(ERROR, "MON-HW"), (ERROR, "CFG-VALGET")]
    assert entries[0].message == "no answer within 1.0 s"
    assert entries[1].message == "CFG-VALGET NAKed for keys CFG_TP_FREQ_TP1"


def test_poll_rejects_bad_requests(stub: pb_grpc.UbloxControlStub, f9t_cfg: dict[str, Any]) -> None:
    err = rpc_error(lambda: stub.PollMessage(pb.PollRequest(patterns=["MON-VER"]), timeout=30))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    init_ok(stub, f9t_cfg)
    for patterns, text in [
        ([], "patterns: give at least one pattern"),
        (["["], "invalid pattern '['"),
        (["ZZZ"], "select no pollable message and no CFG key"),
        ([".*"], "at most 32 per poll"),
        (["CFG-VALGET"], "select no pollable message"),
    ]:
        err = rpc_error(lambda p=patterns: stub.PollMessage(pb.PollRequest(patterns=p), timeout=30))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, patterns
        assert text in rpc_details(err), (patterns, rpc_details(err))


def test_unplug_ends_capture_then_replug_reinitialises(
    stub: pb_grpc.UbloxControlStub, emulator: F9tEmulator, f9t_cfg: dict[str, Any]
) -> None:
    f9t_cfg["apply_to_layers"] = ["RAM"]  # lost when the receiver loses power
    init_ok(stub, f9t_cfg)
    stream = stub.CaptureUblox(pb.CaptureUbloxRequest(patterns=["TIM-TP"]), timeout=STREAM_TIMEOUT)
    assert next(stream).name == "TIM-TP"
    valsets = [i for i, _ in emulator.received].count("CFG-VALSET")
    emulator.unplug()
    tail: list[pb.CaptureUbloxResponse] = []
    err = rpc_error(lambda: tail.extend(stream))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert err.details() == "F9T device disconnected"
    assert tail[-1].type == ERROR
    assert tail[-1].message.startswith("device disconnected: ")
    assert all(r.type == DATA for r in tail[:-1])

    replugged_at = time.time()
    emulator.replug()

    def capture_works() -> bool:
        try:
            got = take(stub.CaptureUblox(pb.CaptureUbloxRequest(patterns=["TIM-TP"]), timeout=5), 1)
        except grpc.RpcError as exc:
            if exc.code() not in (
                grpc.StatusCode.FAILED_PRECONDITION,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            ):
                raise
            return False
        return bool(got) and rx_time(got[0]) > replugged_at

    wait_for(capture_works, timeout=60, what="automatic re-init after re-plug")
    # The daemon re-ran the plan on the power-cycled receiver by itself.
    assert [i for i, _ in emulator.received].count("CFG-VALSET") == 2 * valsets
    assert emulator.value("CFG_TP_FREQ_TP2") == 10_000_000


def test_slow_client_is_told_how_many_frames_were_dropped(
    emulator: F9tEmulator, f9t_cfg: dict[str, Any], tmp_path: Path
) -> None:
    emulator.epoch_s = 0.01
    with ubloxcontrol(tmp_path / "slow", {"max_read_queue_size": 2}) as (d, slow):
        init_ok(slow, f9t_cfg)
        stream = slow.CaptureUblox(pb.CaptureUbloxRequest(), timeout=STREAM_TIMEOUT)
        assert next(stream).type == DATA
        # Not reading: transport buffers fill, then the daemon's 2-frame queue overflows.
        wait_for(lambda: "too slow: dropping" in d.log(), timeout=60, what="frames to be dropped")
        notices = []
        for response in stream:
            if response.type == ERROR:
                notices.append(response.message)
                break
        stream.cancel()
    assert re.fullmatch(r"dropped \d+ frames \(client too slow\)", notices[0])
    assert re.search(r"ERROR .*dropped \d+ frames \(client too slow\)", d.log())


def log_lines(log: str, level: str, text: str) -> list[str]:
    return [line for line in log.splitlines() if f" {level} " in line and text in line]


def test_failing_reinit_backs_off_warns_per_reason_and_says_when_it_worked(
    emulator: F9tEmulator, tmp_path: Path
) -> None:
    emulator.model = "ZED-F9P"  # present but wrong: every attempt fails at MON-VER
    ublox = {
        "init_on_start": True,
        "cfg_key_settings": [{"key": "CFG_MSGOUT_UBX_TIM_TP_USB", "value": 1}],
        "chips": [{"uid": UID, "device": emulator.device_path}],
    }

    def attempts() -> int:  # every attempt starts with one MON-VER poll
        return [identity for identity, _ in emulator.received].count("MON-VER")

    with ubloxcontrol(tmp_path / "retry", ublox) as (d, stub):
        wait_for(lambda: attempts() >= 2, timeout=60, what="two failed attempts")
        # A new reason is worth a new warning: the right model, but another receiver's UID.
        emulator.unique_id = 0x0123456789
        emulator.model = "ZED-F9T"
        wait_for(
            lambda: bool(log_lines(d.log(), "WARNING", "does not match client UID")),
            timeout=60,
            what="the UID failure to be reported",
        )
        emulator.unique_id = int(UID, 16)
        wait_for(
            lambda: capture_streams(stub),
            timeout=60,
            what="the daemon to initialise the receiver by itself",
        )
        log = d.log()
    warnings = log_lines(log, "WARNING", "re-initialising F9T")
    assert len(warnings) == 2, log  # one per reason, not one per attempt
    assert warnings[0].endswith(
        "failed, retrying in 1 s: Model ZED-F9P does not match expected prefix ZED-F9T."
    )
    assert "does not match client UID DF03A241BC" in warnings[1]
    n = attempts()
    assert n >= 3
    (done,) = log_lines(log, "INFO", "initialised by the daemon")
    assert f"initialised by the daemon after {n} attempts: Model ZED-F9T" in done


def test_a_replug_during_the_back_off_is_tried_at_once_and_counted_afresh(
    emulator: F9tEmulator, tmp_path: Path
) -> None:
    emulator.model = "ZED-F9P"
    ublox = {"init_on_start": True, "chips": [{"uid": UID, "device": emulator.device_path}]}
    with ubloxcontrol(tmp_path / "replug", ublox, {"logging": {"level": "debug"}}) as (d, _):
        # Unplug between attempts, never during one (that would be a new failure reason).
        wait_for(
            lambda: "re-init attempt 3 failed" in d.log(),
            timeout=60,
            what="three failed attempts (the next wait is 5 s)",
        )
        emulator.unplug()
        wait_for(lambda: "waiting for F9T device" in d.log(), timeout=60, what="the unplug")
        emulator.model = "ZED-F9T"
        emulator.replug()
        wait_for(
            lambda: bool(log_lines(d.log(), "INFO", "initialised by the daemon")),
            timeout=60,
            what="the re-init after the re-plug",
        )
        log = d.log()
    (done,) = log_lines(log, "INFO", "initialised by the daemon")
    assert "initialised by the daemon after 1 attempt: Model ZED-F9T" in done
    assert len(log_lines(log, "WARNING", "re-initialising F9T")) == 1
