"""Requests parsed by the daemons themselves, so a body protobuf refuses is the client's error.

gRPC's generated handlers parse a request before the servicer runs; a body protobuf refuses
(truncated, a string that is not UTF-8, a message nested deeper than protobuf reads) then ends
the call UNKNOWN with a traceback logged for every such request. Both daemons register handlers
that take the raw bytes and parse them here instead: a body that is not the message is
INVALID_ARGUMENT naming it, logged at most once per interval per message type.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from panoseti_appliance.runtime.bounded import Throttled, bounded, quote

log = logging.getLogger(__name__)
refusals = Throttled(log)

M = TypeVar("M", bound=Message)
R = TypeVar("R")


async def parse(message: type[M], data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> M:
    """`data` parsed as `message`; the call ends INVALID_ARGUMENT naming it when it is not one."""
    try:
        return message.FromString(data)
    except (DecodeError, RecursionError) as exc:
        name = message.DESCRIPTOR.full_name
        refusals.warning(
            f"undecodable {name}",
            "undecodable %s request from %s: %s",
            name,
            context.peer(),
            quote(str(exc), 300),
        )
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, bounded(f"request is not a valid {name}: {exc}")
        )
        raise  # abort raises; this only tells type checkers so


def unary(
    message: type[M], handler: Callable[[M, Any], Awaitable[R]]
) -> Callable[[bytes, Any], Awaitable[R]]:
    """A handler of one request (unary or server-streaming through context.write), parsed."""

    async def handle(data: bytes, context: Any) -> R:
        return await handler(await parse(message, data, context), context)

    return handle


def unary_stream(
    message: type[M], handler: Callable[[M, Any], AsyncIterator[R]]
) -> Callable[[bytes, Any], AsyncIterator[R]]:
    """A server-streaming handler written as an async generator, its request parsed."""

    async def handle(data: bytes, context: Any) -> AsyncIterator[R]:
        async for response in handler(await parse(message, data, context), context):
            yield response

    return handle


async def parsed_stream(
    message: type[M], requests: AsyncIterator[bytes], context: Any
) -> AsyncIterator[M]:
    """A client stream's requests, each parsed."""
    async for data in requests:
        yield await parse(message, data, context)
