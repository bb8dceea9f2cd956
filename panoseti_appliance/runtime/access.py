"""Who may call the write RPCs, and the TLS credentials of the TCP listen addresses.

One `WriteGuard` interceptor serves both daemons: it knows every write RPC of either and the
`access.*_write` setting that governs it, so the rule lives in one place. It judges the
connection an RPC arrived on, never the request: the unix socket (whose file mode decides who
may connect), loopback TCP, other TCP, and whether a TLS client presented a verified
certificate. Connections relayed from sockets systemd passed are judged by their real client,
which the relay records (`RelayedPeers`), not by the private unix socket they arrive through.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeAlias

import grpc

from panoseti_appliance.config.models import AccessConfig, TlsConfig, WriteAccess
from panoseti_appliance.runtime.relay import RelayedPeers

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # generic in the stubs only

#: Every write RPC of both daemons and the setting (under `access`) that governs it.
WRITE_RPCS: Mapping[str, str] = {
    "/daqdata.DaqData/InitHpIo": "daqdata_write",
    "/daqdata.DaqData/UploadImages": "daqdata_write",
    "/ubloxcontrol.UbloxControl/InitF9t": "ublox_write",
}

_ALLOWS = {
    "any": "any client",
    "local": "clients on the unix socket or loopback TCP",
    "authenticated": "clients on the unix socket or with a verified TLS client certificate",
}


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials | None:
    """The TLS credentials of every TCP listen address, or None when TLS is off."""
    if tls.cert_file is None or tls.key_file is None:
        return None
    ca = tls.client_ca_file.read_bytes() if tls.client_ca_file is not None else None
    return grpc.ssl_server_credentials(
        [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
        root_certificates=ca,
        require_client_auth=tls.require_client_cert,
    )


def _is_loopback(peer: str) -> bool:
    """Whether a gRPC peer string (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`) is loopback."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return False
    host = rest.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _has_verified_cert(context: grpc.aio.ServicerContext[Any, Any]) -> bool:
    # gRPC asks for a client certificate only when it requires and verifies one
    # (require_client_cert), so a peer certificate in the auth context is a verified one.
    auth = context.auth_context()
    return auth.get("transport_security_type") == [b"ssl"] and bool(auth.get("x509_pem_cert"))


class WriteGuard(grpc.aio.ServerInterceptor):
    """PERMISSION_DENIED for a write RPC from a connection its `access.*_write` does not allow."""

    def __init__(self, access: AccessConfig, relayed: RelayedPeers) -> None:
        self._access = access
        self._relayed = relayed

    def allowed(self, mode: WriteAccess, context: grpc.aio.ServicerContext[Any, Any]) -> bool:
        if mode == "any":
            return True
        peer = context.peer()
        if peer.startswith("unix:"):
            relayed = self._relayed.origin(peer[len("unix:") :])
            if relayed is None:
                return True  # the unix socket itself: its file mode decided who connected
            peer = relayed
        if mode == "local":
            return _is_loopback(peer)
        return _has_verified_cert(context)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        setting = WRITE_RPCS.get(handler_call_details.method)
        if handler is None or setting is None:
            return handler
        mode: WriteAccess = getattr(self._access, setting)
        if mode == "any":
            return handler
        return self._guarded(handler, handler_call_details.method, f"access.{setting}", mode)

    def _guarded(self, handler: Handler, method: str, setting: str, mode: WriteAccess) -> Handler:
        rpc = method.rpartition("/")[2]

        async def check(context: grpc.aio.ServicerContext[Any, Any]) -> None:
            if not self.allowed(mode, context):
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{rpc} is not allowed from {context.peer()}: {setting} is {mode!r}, which "
                    f"allows only {_ALLOWS[mode]}; call it through the daemon's unix socket, "
                    f"or change {setting} on the node (docs/security.md)",
                )

        if handler.unary_unary is not None:
            inner_uu: Any = handler.unary_unary  # an async method on grpc.aio servers

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                await check(context)
                return await inner_uu(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_unary is not None:
            inner_su: Any = handler.stream_unary

            async def stream_unary(
                requests: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> Any:
                await check(context)
                return await inner_su(requests, context)

            return grpc.stream_unary_rpc_method_handler(
                stream_unary, handler.request_deserializer, handler.response_serializer
            )
        raise TypeError(f"{method}: a write RPC must be unary or client-streaming")
