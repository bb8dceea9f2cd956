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
from typing import Any, Literal, TypeVar

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


# ---- method handlers: every RPC of both daemons is registered through these --------------------

#: How a handler takes its request and gives its responses.
Shape = Literal["unary", "writer", "generator", "client_stream", "client_stream_bytes"]


def method(
    request: type[Message],
    handler: Callable[..., Any],
    serializer: Callable[[Any], bytes],
    shape: Shape = "unary",
) -> grpc.RpcMethodHandler[Any, Any]:
    """The method handler of one RPC, its requests parsed here: `unary` (one request, one
    response), `writer` (server streaming through context.write), `generator` (server streaming,
    an async generator of responses), `client_stream` (a stream of requests, one response),
    `client_stream_bytes` (the same, the handler parsing each request with `parse` itself)."""
    if shape == "client_stream_bytes":
        return grpc.stream_unary_rpc_method_handler(handler, response_serializer=serializer)
    if shape == "client_stream":

        async def upload(requests: AsyncIterator[bytes], context: Any) -> Any:
            return await handler(parsed_stream(request, requests, context), context)

        return grpc.stream_unary_rpc_method_handler(upload, response_serializer=serializer)
    if shape == "generator":
        return grpc.unary_stream_rpc_method_handler(
            unary_stream(request, handler), response_serializer=serializer
        )
    make = (
        grpc.unary_stream_rpc_method_handler
        if shape == "writer"
        else grpc.unary_unary_rpc_method_handler
    )
    return make(unary(request, handler), response_serializer=serializer)


def register(
    server: grpc.aio.Server, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
) -> None:
    """Add `service` with these method handlers, as the generated add_*_to_server would."""
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)
