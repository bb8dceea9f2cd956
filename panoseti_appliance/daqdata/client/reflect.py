"""List a server's gRPC services and the DaqData methods through server reflection.

The original asyncio client's reflect_services was broken; here the request list and the text
rendering are shared, and each client only performs the bidirectional call its own way.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

DAQDATA_SERVICE = "daqdata.DaqData"


def reflection_requests() -> list[reflection_pb2.ServerReflectionRequest]:
    """Ask for the service list, then for the file declaring daqdata.DaqData."""
    return [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=DAQDATA_SERVICE),
    ]


def _method_lines(file_protos: Iterable[bytes]) -> list[str]:
    for raw in file_protos:
        file = descriptor_pb2.FileDescriptorProto.FromString(raw)
        for service in file.service:
            if f"{file.package}.{service.name}" != DAQDATA_SERVICE:
                continue
            lines = []
            for method in service.method:
                req = ("stream " if method.client_streaming else "") + method.input_type.lstrip(".")
                rsp = ("stream " if method.server_streaming else "") + method.output_type.lstrip(
                    "."
                )
                lines.append(f"    rpc {method.name}({req}) returns ({rsp})")
            return lines
    return []


def render_reflection(
    target: str, responses: Iterable[reflection_pb2.ServerReflectionResponse]
) -> str:
    """Text block for one host: its services, then daqdata.DaqData's methods."""
    services: list[str] = []
    methods: list[str] = []
    for response in responses:
        kind = response.WhichOneof("message_response")
        if kind == "list_services_response":
            services = sorted(s.name for s in response.list_services_response.service)
        elif kind == "file_descriptor_response":
            methods = _method_lines(response.file_descriptor_response.file_descriptor_proto)
        elif kind == "error_response":
            methods = [f"    error: {response.error_response.error_message}"]
    lines = [f"{target}:", "  services:"]
    lines += [f"    {name}" for name in services]
    lines.append(f"  {DAQDATA_SERVICE} methods:")
    lines += methods or ["    (not offered by this server)"]
    return "\n".join(lines)
