"""Where a daemon listens: its gRPC addresses and the Unix socket files behind them.

Each configured address is served one of three ways:
- adopted: systemd passed a listening socket bound to that address (`ListenStream=` in a socket
  unit), or the address is `systemd:NAME` and a socket with `FileDescriptorName=NAME` was passed;
  it is served through a `Relay` (see there why), to a private unix socket: a plaintext one for
  adopted unix sockets, and for adopted TCP sockets one with the same credentials as bound TCP
  addresses;
- bound: the daemon binds it. Problems are found before gRPC tries, so each gets one line that
  names the address and the fix: a busy port, a missing or unwritable directory, a file in the
  way that is not a socket (never deleted), a socket another server still answers on. A socket
  file nobody answers on is stale and replaced.
Exit code 69 (EX_UNAVAILABLE) for all of them, via `ListenError`.

With `credentials` (access.tls), every TCP address is served with TLS; unix sockets stay
plaintext, their file mode deciding who may connect (docs/security.md).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from panoseti_appliance.runtime.inherited import Inherited, Passed
from panoseti_appliance.runtime.relay import Relay, RelayedPeers

SYSTEMD_PREFIX = "systemd:"
_WILDCARDS = {"0.0.0.0", "::", ""}
_LOOPBACK = {"127.0.0.1", "::1"}


class ListenError(Exception):
    """An address cannot be served; str(err) names it and the fix."""


def unix_path(address: str) -> str | None:
    """The socket path of a `unix:` address (`unix:///abs` or `unix:rel`), else None."""
    if not address.startswith("unix:"):
        return None
    rest = address[len("unix:") :]
    return rest[2:] if rest.startswith("//") else rest


def tcp_parts(address: str) -> tuple[str, int] | None:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _host_ips(host: str) -> set[str] | None:
    """The IPs a configured host stands for, None for a name we do not resolve here."""
    if host == "localhost":
        return set(_LOOPBACK)
    try:
        return {str(ipaddress.ip_address(host))}
    except ValueError:
        return None


def address_matches(address: str, passed: Passed) -> bool:
    """Whether an inherited listening socket is bound to the configured `address`."""
    path = unix_path(address)
    if path is not None:
        return (
            passed.family == socket.AF_UNIX
            and isinstance(passed.address, str)
            and (os.path.normpath(passed.address) == os.path.normpath(path))
        )
    if address.startswith("unix-abstract:"):
        name = address[len("unix-abstract:") :].encode()
        return passed.family == socket.AF_UNIX and passed.address == b"\0" + name
    parts = tcp_parts(address)
    if parts is None or passed.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    if not isinstance(passed.address, tuple) or len(passed.address) < 2:
        return False
    host, port = parts
    bound_ip, bound_port = str(passed.address[0]), passed.address[1]
    if bound_port != port:
        return False
    if host in _WILDCARDS:
        return bound_ip in _WILDCARDS
    ips = _host_ips(host)
    return ips is not None and bound_ip in ips


def check_unix_path(path: str, what: str) -> None:
    """Make `path` bindable: its directory must exist and be writable; a stale socket goes.

    A file that is not a socket is never deleted; a socket another process answers on is in use.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ListenError(
            f"{what}: directory {directory} does not exist; create it (under systemd "
            "RuntimeDirectory= does) or choose another path"
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ListenError(
            f"{what}: directory {directory} is not writable by this user; fix its owner or "
            "mode, or choose another path"
        )
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ListenError(
            f"{what}: {path} exists and is not a socket; move that file away or choose "
            "another path (it is never deleted for you)"
        )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            pass  # nobody answers: stale
        else:
            raise ListenError(
                f"{what}: {path} is in use by another running server; stop it or choose "
                "another path"
            )
    try:
        os.unlink(path)
    except OSError as exc:
        raise ListenError(
            f"{what}: cannot remove the stale socket {path}: {exc.strerror}; remove it by hand"
        ) from None


def check_tcp_address(address: str, what: str) -> None:
    """Bind a throw-away socket to `address` so a failure says exactly why (gRPC does not)."""
    parts = tcp_parts(address)
    if parts is None:
        return
    host, port = parts
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenError(f"{what}: cannot resolve {host!r} ({exc}); fix the address") from None
    family, kind, proto, _, sockaddr = infos[0]  # what gRPC binds first
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            raise ListenError(bind_problem(what, address, exc)) from None


def bind_problem(what: str, address: str, exc: OSError) -> str:
    port = address.rpartition(":")[2]
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{what}: cannot listen on {address}: port {port} is in use; stop what uses it "
            f"(ss -ltnp 'sport = :{port}') or change the address"
        )
    if exc.errno == errno.EACCES:
        return (
            f"{what}: cannot listen on {address}: permission denied (ports below 1024 need "
            "privileges); choose a port above 1023"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{what}: cannot listen on {address}: no such local address; fix the host part"
    return f"{what}: cannot listen on {address}: {exc.strerror or exc}; change the address"


@dataclass
class GrpcListeners:
    """The gRPC listen addresses of one daemon (`what` names the setting, e.g. daqdata.listen)."""

    what: str
    addresses: list[str]
    #: TLS for TCP addresses (None: plaintext).
    credentials: grpc.ServerCredentials | None = None
    #: The real clients of relayed TCP connections, for access rules.
    relayed: RelayedPeers = field(default_factory=RelayedPeers)
    relays: list[Relay] = field(default_factory=list)
    _bound: dict[str, int] = field(default_factory=dict)  # socket path -> inode we created
    _private: str | None = None

    def open(self, server: grpc.aio.Server, inherited: Inherited) -> None:
        """Adopt or bind every address on `server` (not started yet); ListenError if one fails."""
        for address in self.addresses:
            adopted = self._adopted(address, inherited)
            if adopted:
                for passed in adopted:
                    label = f"{self.what} {address} (from systemd)"
                    tcp = passed.family != socket.AF_UNIX
                    peers = self.relayed if tcp else None
                    sock = inherited.claim_socket(passed)
                    self.relays.append(Relay(sock, "", label, peers))
                continue
            self._bind(server, address)
        if self.relays:
            directory = tempfile.mkdtemp(prefix="panoseti-grpc-")
            self._private = self.relayed.directory = directory
            plain = self._private_socket(server, directory, "relay.sock", None)
            tcp_target = plain
            if self.credentials is not None and any(r.peers for r in self.relays):
                tcp_target = self._private_socket(
                    server, directory, "relay-tls.sock", self.credentials
                )
            for relay in self.relays:
                relay.target = tcp_target if relay.peers is not None else plain

    def _adopted(self, address: str, inherited: Inherited) -> list[Passed]:
        listening = inherited.unclaimed("listening")
        if address.startswith(SYSTEMD_PREFIX):
            name = address[len(SYSTEMD_PREFIX) :]
            named = [p for p in listening if p.name == name]
            if not named:
                raise ListenError(
                    f"{self.what}: {address}: systemd passed no listening socket named {name!r}; "
                    f"add FileDescriptorName={name} to the socket unit, start the daemon through "
                    "it, or remove the address"
                )
            return named
        return [p for p in listening if address_matches(address, p)][:1]

    def _bind(self, server: grpc.aio.Server, address: str) -> None:
        what = f"{self.what} {address}"
        path = unix_path(address)
        if path is not None:
            check_unix_path(path, what)
        else:
            check_tcp_address(address, self.what)
        try:
            if self.credentials is not None and not address.startswith("unix"):
                port = server.add_secure_port(address, self.credentials)
            else:
                port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise ListenError(f"{what}: cannot listen ({exc}); change the address") from None
        if port == 0 and path is None:
            raise ListenError(f"{what}: cannot listen; change the address")
        if path is not None:
            with contextlib.suppress(OSError):
                self._bound[path] = os.stat(path).st_ino

    def _private_socket(
        self,
        server: grpc.aio.Server,
        directory: str,
        name: str,
        credentials: grpc.ServerCredentials | None,
    ) -> str:
        """A unix socket only this user can reach (mkdtemp's mode 0700), where relays connect."""
        path = str(Path(directory) / name)
        if credentials is None:
            server.add_insecure_port(f"unix://{path}")
        else:
            server.add_secure_port(f"unix://{path}", credentials)
        self._bound[path] = -1
        return path

    async def start(self) -> None:
        for relay in self.relays:
            await relay.start()

    def serving(self) -> bool:
        return all(relay.serving() for relay in self.relays)

    async def close(self) -> None:
        """Stop relays; remove only the socket files this process created."""
        for relay in self.relays:
            await relay.close()
        self.relays.clear()
        for path, inode in self._bound.items():
            with contextlib.suppress(OSError):
                if inode == -1 or os.stat(path).st_ino == inode:
                    os.unlink(path)
        self._bound.clear()
        if self._private is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self._private)
            self._private = None
