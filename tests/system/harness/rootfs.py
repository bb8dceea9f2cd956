"""Debian roots for the system tests: built once per machine, stacked with overlayfs per boot.

Three layers, each a plain directory, lowest first:
- the Debian root: `debootstrap --variant=minbase` with systemd, udev, dbus and python3 (no kernel);
- the node layer: an overlayfs upper directory over that root holding /opt/panoseti/venv, created by
  the root's own python3 and filled from the wheelhouse (wheels.py) without network;
- the project layer, one per pytest session: the working tree's wheel installed into that venv, and
  the unit files if `panoseti install-units` exists.
A boot mounts the layers under a fresh upper directory, so the cached layers never change and no
boot sees another's state. Only the project layer is rebuilt each session (seconds).

The first two layers live in a cache outside the clone (root-owned, hundreds of MB, reusable by every
clone on the machine), keyed by a hash of what went into them. Each is built in a temp directory and
renamed into place under a file lock, so an interrupted build never leaves a half-built layer and two
pytest processes never build the same one twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("panoseti.systest")

#: Bump when a layer's recipe changes in a way its key does not capture.
BUILDER_VERSION = 1
SUITE = "bookworm"
#: What the Debian root holds: a booting systemd with udev and D-Bus, python3 for the venv, and the
#: small tools scenarios use to look around (ps/pgrep/kill, ss/ip).
ROOT_PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "python3",
    "python3-venv",
    "procps",
    "iproute2",
)
#: Where the node's venv lives inside the root.
VENV = "/opt/panoseti/venv"
CACHE_ENV = "PANOSETI_SYSTEST_CACHE"
DEFAULT_CACHE = Path("/var/cache/panoseti-systest")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
_TMP_PREFIX = ".tmp-"
#: nspawn on a host whose PID 1 is not systemd: pure cgroup2 in the container avoids the hybrid
#: layout's warnings; TERM=dumb keeps colour codes out of captured consoles.
NSPAWN_ENV = {"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1", "TERM": "dumb"}

_machine_names = itertools.count()


def cache_dir() -> Path:
    """The layer cache: $PANOSETI_SYSTEST_CACHE or /var/cache/panoseti-systest."""
    path = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(*parts: object) -> str:
    """A short stable hash of everything that determines a layer's content."""
    blob = json.dumps([BUILDER_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 1800) -> str:
    """Run a build step; on failure raise with its command and the tail of its output."""
    t0 = time.monotonic()
    proc = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env=None if env is None else {**os.environ, **env},
        timeout=timeout,
        check=False,
    )
    log.debug("%.1f s: %s", time.monotonic() - t0, " ".join(argv))
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        raise RuntimeError(f"exit {proc.returncode}: {' '.join(argv)}\n{tail}")
    return proc.stdout


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One builder per cache at a time, across processes (released if the holder dies)."""
    with (cache_dir() / ".lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process building in %s", cache_dir())
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def cached(name: str, key: str, build: Callable[[Path], None]) -> Path:
    """The cache entry `<name>-<key>`, made by `build(empty_dir)` on first use.

    `build` fills a fresh 0755 directory; only when it returns is the directory renamed to its final
    name. Leftovers of interrupted builds (any `.tmp-*` entry) are removed under the same lock.
    """
    final = cache_dir() / f"{name}-{key}"
    if final.is_dir():
        return final
    with _build_lock():
        if final.is_dir():
            return final
        for stale in cache_dir().glob(_TMP_PREFIX + "*"):
            log.info("removing %s, left by an interrupted build", stale)
            remove_tree(stale)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{name}-", dir=cache_dir()))
        tmp.chmod(0o755)
        t0 = time.monotonic()
        try:
            build(tmp)
            tmp.rename(final)
        except BaseException:
            remove_tree(tmp)
            raise
        log.info("built %s in %.1f s", final, time.monotonic() - t0)
    return final


def _mounts_under(path: Path) -> list[Path]:
    """Mount points at or below `path`, deepest first."""
    base = os.path.realpath(path)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == base or point.startswith(base + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_tree(path: Path) -> None:
    """rm -rf that first unmounts whatever is mounted inside, so it never deletes through a mount."""
    for point in _mounts_under(path):
        subprocess.run(["umount", "--lazy", str(point)], check=False)
    if _mounts_under(path):
        raise RuntimeError(f"cannot unmount everything under {path}; not removing it")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def debian_mirror() -> str:
    """The mirror apt uses on this host for `SUITE` (the only one reachable on some machines)."""
    for sources in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", sources.read_text()):
            fields = {
                k.strip().lower(): v.strip()
                for k, _, v in (ln.partition(":") for ln in stanza.splitlines())
                if not k.startswith("#") and v
            }
            uris = fields.get("uris", "").split()
            types, suites = fields.get("types", "").split(), fields.get("suites", "").split()
            if uris and "deb" in types and SUITE in suites:
                return uris[0]
    sources_list = Path("/etc/apt/sources.list")
    if sources_list.exists():
        for line in sources_list.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", "", line).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                return words[1]
    return DEFAULT_MIRROR


def debian_root(packages: Sequence[str] = ROOT_PACKAGES) -> Path:
    """The cached minbase Debian root (with its apt lists, so copies can apt-get install more)."""

    def build(root: Path) -> None:
        mirror = debian_mirror()
        log.info("debootstrap %s from %s (about a minute)", SUITE, mirror)
        include = "--include=" + ",".join(packages)
        run(["debootstrap", "--variant=minbase", include, SUITE, str(root), mirror])
        run(["chroot", str(root), "apt-get", "clean"])

    return cached("root", cache_key("root", SUITE, sorted(packages)), build)


def run_in(
    root: Path,
    argv: Sequence[str],
    *,
    binds: Mapping[Path, str] | None = None,
    network: bool = False,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run one command inside `root` (not booted) with systemd-nspawn and return its output.

    nspawn rather than a bare chroot: it gives the command /proc, /dev, a tmpfs /tmp and /run, and
    tells systemd's tools they are offline, with no host mount to undo afterwards. `binds` maps host
    paths to read-only mount points, which should be under /tmp so nothing is left in the root.
    """
    argv_nspawn = [*nspawn_base(root), "--console=pipe"]
    argv_nspawn += (
        ["--resolv-conf=copy-host"] if network else ["--resolv-conf=off", "--private-network"]
    )
    for host, inside in (binds or {}).items():
        argv_nspawn.append(f"--bind-ro={host}:{inside}")
    for name, value in (env or {}).items():
        argv_nspawn.append(f"--setenv={name}={value}")
    return run([*argv_nspawn, "--", *argv], env=NSPAWN_ENV)


def nspawn_base(root: Path) -> list[str]:
    """The systemd-nspawn options every container here needs.

    No host systemd or D-Bus: --register=no and --keep-unit (both). A unique machine name, because
    nspawn keeps per-name state under /run/systemd/nspawn and runs may be concurrent. The journal stays
    inside the root (the host may share the root's machine-id directory); time zone untouched.
    """
    name = f"panoseti-systest-{os.getpid()}-{next(_machine_names)}"
    return [
        "systemd-nspawn",
        f"--directory={root}",
        f"--machine={name}",
        "--register=no",
        "--keep-unit",
        "--quiet",
        "--link-journal=no",
        "--timezone=off",
    ]


@contextlib.contextmanager
def overlay(lowers: Sequence[Path], upper: Path) -> Iterator[Path]:
    """Mount `lowers` (top first) under the writable `upper`; yield the merged directory.

    The work and mount directories are siblings of `upper` (same file system, as overlayfs needs)
    and are removed on exit; `upper` keeps every change.
    """
    for path in (*lowers, upper):
        if not set(str(path)).isdisjoint(":,"):
            raise ValueError(f"overlayfs cannot take a path with ':' or ',': {path}")
    upper.mkdir(parents=True, exist_ok=True)
    work = upper.with_name(upper.name + ".work")
    merged = upper.with_name(upper.name + ".merged")
    work.mkdir()
    merged.mkdir()
    options = f"lowerdir={':'.join(map(str, lowers))},upperdir={upper},workdir={work}"
    try:
        run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)])
        yield merged
    finally:
        remove_tree(merged)
        remove_tree(work)


def _python_version(root: Path) -> str:
    """major.minor of the root's python3 (from its stdlib directory, without running it)."""
    found = [
        p.name
        for p in (root / "usr/lib").glob("python3.*")
        if re.fullmatch(r"python3\.\d+", p.name)
    ]
    if not found:
        raise RuntimeError(f"no python3 in {root}")
    return max(found, key=lambda name: int(name.split(".")[1])).removeprefix("python")


def node_layer(root: Path, wheelhouse: Path) -> Path:
    """The cached layer over `root` with /opt/panoseti/venv holding the project's dependencies."""
    built_for = (wheelhouse / "python.txt").read_text().strip()
    if _python_version(root) != built_for:
        raise RuntimeError(
            f"the wheelhouse is for Python {built_for} but the root has {_python_version(root)}: "
            "run the tests with a venv made by the Debian 12 python3"
        )

    def build(upper: Path) -> None:
        with overlay([root], upper) as merged:
            run_in(merged, ["python3", "-m", "venv", VENV])
            _pip_install(merged, wheelhouse, "--requirement", "/tmp/wheelhouse/requirements.txt")

    return cached("node", cache_key("node", root.name, wheelhouse.name), build)


def _pip_install(
    root: Path, wheelhouse: Path, *args: str, binds: Mapping[Path, str] | None = None
) -> None:
    """pip install into the node's venv from the wheelhouse alone: the container has no network."""
    run_in(
        root,
        [f"{VENV}/bin/pip", "install", "--no-index", "--find-links", "/tmp/wheelhouse", *args],
        binds={wheelhouse: "/tmp/wheelhouse", **(binds or {})},
        env={"PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )


@dataclass(frozen=True)
class Node:
    """A prepared node root: overlay layers (top first) and a scratch directory for its boots."""

    layers: tuple[Path, ...]
    scratch: Path

    def mounted(self, upper: Path) -> contextlib.AbstractContextManager[Path]:
        """The node's root, writable, with every change going to `upper`."""
        return overlay(self.layers, upper)


def prepare_node(wheelhouse: Path, project_wheel: Path, scratch: Path) -> Node:
    """Root + node layer (cached) + this session's project layer (built now, in `scratch`)."""
    root = debian_root()
    node = node_layer(root, wheelhouse)
    project = scratch / "project-layer"
    t0 = time.monotonic()
    with overlay([node, root], project) as merged:
        _pip_install(
            merged,
            wheelhouse,
            f"/tmp/project/{project_wheel.name}",
            binds={project_wheel.parent: "/tmp/project"},
        )
        # The unit files, udev rule and sysusers/tmpfiles entries, as an operator installs them.
        panoseti = f"{VENV}/bin/panoseti"
        run_in(
            merged, [panoseti, "install-units", "--prefix", "/usr/local", "--bindir", f"{VENV}/bin"]
        )
    log.info("project layer in %.1f s", time.monotonic() - t0)
    return Node(layers=(project, node, root), scratch=scratch)
