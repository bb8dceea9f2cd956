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
from panoseti_appliance.runtime.requests import method, register
from panoseti_appliance.structs import struct_to_dict

if TYPE_CHECKING:
    from panoseti_appliance.ublox.server.servicer import UbloxControlServicer

SERVICE = "ubloxcontrol.UbloxControl"
M = TypeVar("M", bound=Message)


def add_to_server(servicer: UbloxControlServicer, server: grpc.aio.Server) -> None:
    """`add_UbloxControlServicer_to_server`, each handler parsing its own request
    (runtime.requests)."""
    register(
        server,
        SERVICE,
        {
            "InitF9t": method(
                pb.InitF9tRequest, servicer.InitF9t, pb.InitF9tResponse.SerializeToString
            ),
            "PollMessage": method(
                pb.PollRequest, servicer.PollMessage, pb.PollResponse.SerializeToString
            ),
            "CaptureUblox": method(
                pb.CaptureUbloxRequest,
                servicer.CaptureUblox,
                pb.CaptureUbloxResponse.SerializeToString,
                "generator",
            ),
        },
    )


def config_from_struct(struct: Struct) -> dict[str, Any]:
    """InitF9t's f9t_config as plain values, numbers as the doubles the Struct carries, so the
    rules name the field that holds a non-finite one (`baud: inf is not …`)."""
    return struct_to_dict(struct, integral_as_int=False)
