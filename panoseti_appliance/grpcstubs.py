"""Typed views of the stock gRPC health and reflection client stubs.

Their stub packages (types-grpcio-health-checking, types-grpcio-reflection) declare HealthStub
without its methods and ServerReflectionStub with an untyped method and a sync-only channel, so
every call through them would be unchecked. These functions return the very same stub objects,
typed as the protocols below, which spell out the methods the generated code gives them.
"""

from __future__ import annotations

from typing import Protocol, cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


class HealthCalls(Protocol):
    """grpc.health.v1.Health's RPCs on a blocking channel."""

    Check: grpc.UnaryUnaryMultiCallable[
        health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
    ]
    Watch: grpc.UnaryStreamMultiCallable[
        health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
    ]


class AioReflectionCalls(Protocol):
    """grpc.reflection.v1alpha.ServerReflection's RPC on an asyncio channel."""

    ServerReflectionInfo: grpc.aio.StreamStreamMultiCallable[
        reflection_pb2.ServerReflectionRequest, reflection_pb2.ServerReflectionResponse
    ]


def health_stub(channel: grpc.Channel) -> HealthCalls:
    """A grpc.health.v1 client on `channel`."""
    return cast(HealthCalls, health_pb2_grpc.HealthStub(channel))


def aio_reflection_stub(channel: grpc.aio.Channel) -> AioReflectionCalls:
    """A server reflection client on an asyncio `channel`."""
    # The stub package types the constructor for blocking channels only; the generated code takes
    # either kind, as every generated stub does.
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
    return cast(AioReflectionCalls, stub)
