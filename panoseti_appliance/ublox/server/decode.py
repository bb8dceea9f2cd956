"""UbloxControl requests as the servicer reads them, whatever a client sent.

gRPC decodes a request before the servicer sees it; a body protobuf refuses (truncated, a string
that is not UTF-8, a Struct nested deeper than protobuf reads) would end the call UNKNOWN with a
logged traceback each time. The servicer is registered here with deserializers that turn such a
body into `Undecodable`, which it answers INVALID_ARGUMENT and logs throttled.

`config_from_struct` reads InitF9t's Struct for the rules in `ublox.plan`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message
from google.protobuf.struct_pb2 import Struct, Value

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance._proto import ublox_control_pb2_grpc as pb_grpc

SERVICE = "ubloxcontrol.UbloxControl"
M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Undecodable:
    """A request body protobuf could not read, and why."""

    reason: str


def tolerant(message: type[M]) -> Callable[[bytes], M | Undecodable]:
    """`message.FromString`, with a body it refuses returned as Undecodable."""

    def deserialize(body: bytes) -> M | Undecodable:
        try:
            return message.FromString(body)
        except DecodeError as exc:
            return Undecodable(str(exc))

    return deserialize


def add_to_server(servicer: pb_grpc.UbloxControlServicer, server: grpc.aio.Server) -> None:
    """`add_UbloxControlServicer_to_server`, with the tolerant deserializers."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "InitF9t": grpc.unary_unary_rpc_method_handler(
            servicer.InitF9t,
            request_deserializer=tolerant(pb.InitF9tRequest),
            response_serializer=pb.InitF9tResponse.SerializeToString,
        ),
        "PollMessage": grpc.unary_unary_rpc_method_handler(
            servicer.PollMessage,
            request_deserializer=tolerant(pb.PollRequest),
            response_serializer=pb.PollResponse.SerializeToString,
        ),
        "CaptureUblox": grpc.unary_stream_rpc_method_handler(
            servicer.CaptureUblox,
            request_deserializer=tolerant(pb.CaptureUbloxRequest),
            response_serializer=pb.CaptureUbloxResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)


def config_from_struct(struct: Struct) -> dict[str, Any]:
    """InitF9t's f9t_config as plain values, numbers as the doubles the Struct carries.

    Not json_format.MessageToDict: it refuses a non-finite number with a ValueError about the
    whole message, where the rules should say which field holds it (`baud: inf is not …`).
    The depth is protobuf's: it reads no Struct nested deeper than its recursion limit.
    """
    return {key: _value(value) for key, value in struct.fields.items()}


def _value(value: Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return config_from_struct(value.struct_value)
    if kind == "list_value":
        return [_value(v) for v in value.list_value.values]
    return None
