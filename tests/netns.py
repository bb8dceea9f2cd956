"""Network namespaces joined to this one by veth pairs: several DAQ "hosts" on one machine.

Each `Namespace` is a network namespace with its loopback up and one veth pair: the far end,
inside, has `address` (10.213.R.4i+2/30), the near end here has the /30's other address, so a
daemon started with `prefix` listens on its own host address and is reached from the root
namespace as a DAQ node is reached from the head node. Processes still share the filesystem,
so Hashpipe sockets and run directories under the test's tmp dir work as on one node.

`fleet(n)` makes `n` of them with names unique to this run and removes them afterwards,
whatever happened; `netns_missing()` says why this machine cannot (not root, no iproute2,
namespaces refused), for `tests.prerequisites.unavailable`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

#: The /16 the fleets' /30 links come from: private, and not one Docker or libvirt defaults to.
LINK_NET = ipaddress.ip_network("10.213.0.0/16")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip ARGS`; with check, fail with its stderr."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def netns_missing() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespace tests need root"
    if shutil.which("ip") is None:
        return "network namespace tests need ip (Debian package iproute2)"
    probe = f"pzprobe{secrets.token_hex(3)}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add is refused here: {made.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


@dataclass(frozen=True)
class Namespace:
    """One namespace and its link to the root namespace."""

    name: str
    #: The namespace's own address (what its daemons bind).
    address: str
    #: The root namespace's end of the link.
    peer: str
    #: The veth device on the root side (its twin inside is deleted with the namespace).
    host_device: str

    @property
    def prefix(self) -> list[str]:
        """Prepended to a command, runs it inside the namespace (`ip netns exec` execs it, so
        the process id is the command's own)."""
        return ["ip", "netns", "exec", self.name]

    def pids(self) -> list[int]:
        """Processes still running inside."""
        out = ip("netns", "pids", self.name, check=False).stdout
        return [int(p) for p in out.split()]


def _free_subnet_base() -> ipaddress.IPv4Network:
    """A /24 of LINK_NET no interface of this namespace has an address in."""
    used = ip("-4", "-o", "addr", "show").stdout
    for _ in range(100):
        third = random.randrange(256)
        if f"10.213.{third}." not in used:
            return ipaddress.IPv4Network(f"10.213.{third}.0/24")
    raise RuntimeError(f"no free /24 left in {LINK_NET}")


def _make(name: str, device: str, link: ipaddress.IPv4Network) -> Namespace:
    inner_device = f"{device}i"
    near, far = (str(a) for a in link.hosts())
    ip("netns", "add", name)
    ip("link", "add", device, "type", "veth", "peer", "name", inner_device)
    ip("link", "set", inner_device, "netns", name)
    ip("addr", "add", f"{near}/{link.prefixlen}", "dev", device)
    ip("link", "set", device, "up")
    ip("-n", name, "addr", "add", f"{far}/{link.prefixlen}", "dev", inner_device)
    ip("-n", name, "link", "set", inner_device, "up")
    ip("-n", name, "link", "set", "lo", "up")
    return Namespace(name, far, near, device)


def _remove(ns: Namespace) -> None:
    """Kill what still runs inside (only our own processes can be there), delete the
    namespace, then the root-side device if the kernel has not already taken it with it."""
    for pid in ns.pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    ip("netns", "del", ns.name, check=False)
    if ip("link", "show", ns.host_device, check=False).returncode == 0:
        ip("link", "del", ns.host_device, check=False)


@contextlib.contextmanager
def fleet(n: int) -> Iterator[list[Namespace]]:
    """`n` linked namespaces named for this run (`pz<token><i>`), removed on exit."""
    token = secrets.token_hex(3)
    base = _free_subnet_base()
    links = list(base.subnets(new_prefix=30))
    made: list[Namespace] = []
    try:
        for i in range(n):
            # Interface names are at most 15 bytes: "pz" + 6 hex + "h" + index + "i".
            made.append(_make(f"pz{token}n{i}", f"pz{token}h{i}", links[i]))
        yield made
    finally:
        for ns in made:
            _remove(ns)
        if len(made) < n:  # the one whose set-up failed half-way: removed by name
            i = len(made)
            _remove(Namespace(f"pz{token}n{i}", "", "", f"pz{token}h{i}"))
