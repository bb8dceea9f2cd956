"""Serve a listening socket systemd passed us through the gRPC server.

grpcio cannot take an already-listening socket (its Python API only binds addresses itself;
grpc/grpc#19133), so the server also listens on a private unix socket and every connection
accepted on the inherited socket is spliced to it, byte for byte in both directions, with
asyncio's flow control so neither side buffers without bound. The cost is one extra copy per
byte on those connections only; addresses the daemon binds itself are served by gRPC directly.

gRPC then sees every relayed connection as a unix-socket client. So that access rules judge the
real client (`runtime.access`), a relay of a TCP socket binds each upstream connection to its own
name in the private directory and records which client it carries (`RelayedPeers`); gRPC
reports that name as the peer. TLS is not the relay's business: it forwards the encrypted bytes
to a private socket that gRPC serves with the same credentials as the TCP addresses it binds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import sys
from typing import Any

from panoseti_appliance.runtime.logs import fields

log = logging.getLogger(__name__)


class RelayedPeers:
    """The real clients of relayed TCP connections, by the name their upstream end is bound to."""

    def __init__(self) -> None:
        self.directory: str | None = None
        self._origins: dict[str, str] = {}
        self._numbers = itertools.count()

    def bind(self, sock: socket.socket, origin: str) -> str:
        """Bind `sock` (AF_UNIX, before connecting) to a fresh name recorded as `origin`."""
        assert self.directory is not None
        name = os.path.join(self.directory, f"c{next(self._numbers)}")
        sock.bind(name)
        os.unlink(name)  # the bound name stays the socket's address; the file is not needed
        self._origins[name] = origin
        return name

    def release(self, name: str) -> None:
        self._origins.pop(name, None)

    def origin(self, peer_path: str) -> str | None:
        """The gRPC-style peer (`ipv4:ADDR:PORT`) a relayed connection carries, None if not one."""
        return self._origins.get(peer_path)


def grpc_peer(transport: asyncio.BaseTransport) -> str:
    """A TCP transport's client as gRPC names peers (`ipv4:1.2.3.4:5`, `ipv6:[::1]:5`)."""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) == 4:
        return f"ipv6:[{peer[0]}]:{peer[1]}"
    if isinstance(peer, tuple):
        return f"ipv4:{peer[0]}:{peer[1]}"
    return "unix:"


class _Half(asyncio.Protocol):
    """One side of a spliced connection; writes what it receives to its partner."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.partner: _Half | None = None
        self._early: list[bytes] = []  # received before the partner connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def attach(self, partner: _Half) -> None:
        self.partner = partner
        assert partner.transport is not None
        for chunk in self._early:
            partner.transport.write(chunk)
        self._early.clear()

    def data_received(self, data: bytes) -> None:
        if self.partner is None or self.partner.transport is None:
            self._early.append(data)
        else:
            self.partner.transport.write(data)

    def eof_received(self) -> bool:
        if self.partner is not None and self.partner.transport is not None:
            if self.partner.transport.can_write_eof():
                self.partner.transport.write_eof()
            return True  # keep our write side open until the partner finishes too
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.partner is not None and self.partner.transport is not None:
            self.partner.transport.close()

    # Flow control: when our transport's buffer is full, stop reading the partner.
    def pause_writing(self) -> None:
        if self.partner is not None and self.partner.transport is not None:
            self.partner.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.partner is not None and self.partner.transport is not None:
            self.partner.transport.resume_reading()


class _Inbound(_Half):
    """A client connection on the inherited socket; dials the gRPC server when it arrives."""

    def __init__(self, relay: Relay) -> None:
        super().__init__()
        self._relay = relay
        self._bound: str | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._bound is not None and self._relay.peers is not None:
            self._relay.peers.release(self._bound)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        task = asyncio.get_running_loop().create_task(self._dial())
        self._relay.track(task)

    async def _dial(self) -> None:
        assert self.transport is not None
        peer = self._relay.peer_of(self.transport)
        self.transport.pause_reading()
        loop = asyncio.get_running_loop()
        relay = self._relay
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            if relay.peers is not None:
                self._bound = relay.peers.bind(sock, grpc_peer(self.transport))
            await loop.sock_connect(sock, relay.target)
            _, upstream = await loop.create_unix_connection(_Half, sock=sock)
        except OSError as exc:
            sock.close()
            log.warning("%s: cannot reach the gRPC server: %s", relay.label, exc)
            self.transport.close()
            return
        self.attach(upstream)
        upstream.attach(self)
        self.transport.resume_reading()
        log.debug("%s: client %s", self._relay.label, peer, extra=fields(peer=peer))


class Relay:
    """Accept on `sock` (inherited, listening) and splice each connection to `target`.

    `peers` records the clients of a TCP socket's connections (None for a unix socket's).
    """

    def __init__(
        self, sock: socket.socket, target: str, label: str, peers: RelayedPeers | None = None
    ) -> None:
        self.sock = sock
        self.target = target
        self.label = label
        self.peers = peers
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def peer_of(transport: asyncio.BaseTransport) -> str:
        peer = transport.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else f"unix:{peer or '?'}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.sock.setblocking(False)
        if self.sock.family == socket.AF_UNIX:
            # The socket file is systemd's: never unlinked here (Python 3.13 would, by default).
            keep: dict[str, Any] = {"cleanup_socket": False} if sys.version_info >= (3, 13) else {}
            self._server = await loop.create_unix_server(
                lambda: _Inbound(self), sock=self.sock, **keep
            )
        else:
            self._server = await loop.create_server(lambda: _Inbound(self), sock=self.sock)

    def serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
        else:
            self.sock.close()
        for task in list(self._tasks):
            task.cancel()
