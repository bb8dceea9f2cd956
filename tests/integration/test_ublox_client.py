"""The client libraries against a live daemon: multi-host merge, host labels, reconnect."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import grpc
import pytest

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance.ublox.client import AioUbloxControlClient, UbloxControlClient
from panoseti_appliance.ublox.emulator import F9tEmulator
from tests.daemons import Daemon
from tests.integration.test_ublox_init import daemon, emulator, f9t_cfg

__all__ = ["daemon", "emulator", "f9t_cfg"]  # fixtures used by this module

DATA = pb.CaptureUbloxResponse.DATA
ERROR = pb.CaptureUbloxResponse.ERROR


def test_sync_client_merges_hosts_and_keeps_labels(daemon: Daemon, f9t_cfg: dict[str, Any]) -> None:
    hosts = [daemon.target, daemon.unix_target]  # one daemon reached two ways
    with UbloxControlClient(hosts) as client:
        replies = client.init_f9t(f9t_cfg, force_init=True, timeout=60)
        assert list(replies) == hosts
        # Each host re-initialises in turn; both end configured.
        assert all(r.init_status == pb.InitF9tResponse.SUCCESS for r in replies.values())
        polled = client.poll(["SEC-UNIQID"])
        assert [(p.host, p.response.name) for p in polled] == [(h, "SEC-UNIQID") for h in hosts]
        stop = threading.Event()
        seen: dict[str, int] = {h: 0 for h in hosts}
        for item in client.capture(["TIM-TP"], stop_event=stop):
            assert item.response.type == DATA
            assert item.response.name == "TIM-TP"
            seen[item.host] += 1
            if min(seen.values()) >= 3:
                stop.set()
    assert min(seen.values()) >= 3


def test_sync_client_raises_non_retryable_errors(daemon: Daemon, f9t_cfg: dict[str, Any]) -> None:
    with UbloxControlClient([daemon.target]) as client:
        client.init_f9t(f9t_cfg, force_init=True)
        with pytest.raises(grpc.RpcError) as info:
            next(iter(client.capture(["("])))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_capture_of_an_uninitialised_receiver_is_raised_not_retried(daemon: Daemon) -> None:
    with UbloxControlClient([daemon.target]) as client, pytest.raises(grpc.RpcError) as info:
        next(iter(client.capture(["TIM-TP"])))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "F9T is not initialized" in (info.value.details() or "")


async def test_aio_capture_of_an_uninitialised_receiver_is_raised(daemon: Daemon) -> None:
    async with AioUbloxControlClient([daemon.target]) as client:
        with pytest.raises(grpc.RpcError) as info:
            async for _ in client.capture(["TIM-TP"]):
                pass
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_hosts_are_required() -> None:
    with pytest.raises(ValueError, match="hosts: give at least one UbloxControl address"):
        UbloxControlClient([])


async def test_aio_capture_survives_unplug_and_replug(
    daemon: Daemon, emulator: F9tEmulator, f9t_cfg: dict[str, Any]
) -> None:
    async with AioUbloxControlClient([daemon.target]) as client:
        replies = await client.init_f9t(f9t_cfg, force_init=True)
        assert replies[daemon.target].init_status == pb.InitF9tResponse.SUCCESS
        stop = asyncio.Event()
        events: list[tuple[int, str, str]] = []
        replugged = False
        async for item in client.capture(["TIM-TP"], stop_event=stop):
            assert item.host == daemon.target
            r = item.response
            events.append((r.type, r.name, r.message))
            data_count = sum(1 for e in events if e[0] == DATA)
            if data_count == 2 and not replugged and not any(e[0] == ERROR for e in events):
                await asyncio.to_thread(emulator.unplug)
            if (
                r.type == ERROR
                and r.message.startswith("stream ended: UNAVAILABLE")
                and not replugged
            ):
                await asyncio.to_thread(emulator.replug)
                replugged = True
            if replugged and r.type == DATA:
                stop.set()
    messages = [m for t, _, m in events if t == ERROR]
    assert messages[0].startswith("device disconnected: ")
    assert messages[1].startswith(
        "stream ended: UNAVAILABLE: F9T device disconnected; re-subscribing"
    )
    assert events[-1][:2] == (DATA, "TIM-TP")
