"""Which stream ends make a UbloxControl capture re-subscribe, and which are raised."""

from __future__ import annotations

import grpc
import pytest

from panoseti_appliance.ublox.client.api import should_resubscribe

Code = grpc.StatusCode


@pytest.mark.parametrize("code", [Code.UNAVAILABLE, Code.CANCELLED])
@pytest.mark.parametrize("streamed", [False, True])
def test_daemon_or_device_gone_is_retried(code: grpc.StatusCode, streamed: bool) -> None:
    assert should_resubscribe(code, reconnect=True, streamed=streamed)


def test_not_initialised_is_retried_only_after_streaming() -> None:
    # Mid re-plug / re-init the daemon refuses with FAILED_PRECONDITION until it is back up.
    assert should_resubscribe(Code.FAILED_PRECONDITION, reconnect=True, streamed=True)
    # On a first subscription nobody ran InitF9t: waiting would hang the caller.
    assert not should_resubscribe(Code.FAILED_PRECONDITION, reconnect=True, streamed=False)


@pytest.mark.parametrize(
    "code", [Code.INVALID_ARGUMENT, Code.UNIMPLEMENTED, Code.INTERNAL, Code.UNKNOWN, None]
)
def test_other_ends_are_raised(code: grpc.StatusCode | None) -> None:
    assert not should_resubscribe(code, reconnect=True, streamed=True)


@pytest.mark.parametrize("code", [Code.UNAVAILABLE, Code.CANCELLED, Code.FAILED_PRECONDITION])
def test_reconnect_false_raises_everything(code: grpc.StatusCode) -> None:
    assert not should_resubscribe(code, reconnect=False, streamed=True)
