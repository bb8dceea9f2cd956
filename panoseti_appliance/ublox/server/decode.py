"""UbloxControl requests as the servicer reads them, whatever a client sent.

The servicer is registered here with handlers that parse their own requests
(runtime.requests), so a body protobuf refuses is INVALID_ARGUMENT, logged throttled, instead of
UNKNOWN with a traceback.

`config_from_struct` reads InitF9t's Struct for the rules in `ublox.plan`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance.runtime.requests import unary, unary_stream
from panoseti_appliance.structs import struct_to_dict

if TYPE_CHECKING:
    from panoseti_appliance.ublox.server.servicer import UbloxControlServicer

SERVICE = "ubloxcontrol.UbloxControl"
M = TypeVar("M", bound=Message)


def add_to_server(servicer: UbloxControlServicer, server: grpc.aio.Server) -> None:
    """`add_UbloxControlServicer_to_server`, each handler parsing its own request
    (runtime.requests)."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "InitF9t": grpc.unary_unary_rpc_method_handler(
            unary(pb.InitF9tRequest, servicer.InitF9t),
            response_serializer=pb.InitF9tResponse.SerializeToString,
        ),
        "PollMessage": grpc.unary_unary_rpc_method_handler(
            unary(pb.PollRequest, servicer.PollMessage),
            response_serializer=pb.PollResponse.SerializeToString,
        ),
        "CaptureUblox": grpc.unary_stream_rpc_method_handler(
            unary_stream(pb.CaptureUbloxRequest, servicer.CaptureUblox),
            response_serializer=pb.CaptureUbloxResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)


def config_from_struct(struct: Struct) -> dict[str, Any]:
    """InitF9t's f9t_config as plain values, numbers as the doubles the Struct carries, so the
    rules name the field that holds a non-finite one (`baud: inf is not …`)."""
    return struct_to_dict(struct, integral_as_int=False)
