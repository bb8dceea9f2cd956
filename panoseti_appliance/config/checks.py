"""Small value checks shared by the config models and the original-format importers.

Each check raises `ValueError` with a message that says what is wrong and how to fix it; a
`FieldProblem` additionally names the key path the problem belongs to when that path is not the
one pydantic is validating (cross-field rules), so the error can point at the right file line.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import string
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath
from typing import TypeVar

from pydantic import ValidationError
from pydantic_core import InitErrorDetails

from panoseti_appliance.runtime.bounded import quote

MAX_MODULE_ID = 65535
_HOSTNAME = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$"
)
_RANGE_ITEM = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
PathT = TypeVar("PathT", bound=PurePath)


class FieldProblem(ValueError):
    """A cross-field rule failed; `paths` are the keys involved, the one to blame first.

    pydantic reports a model validator's error at the model, so the loader uses `paths` to find
    the file and line of the setting that the operator should change.
    """

    def __init__(self, paths: Sequence[str], message: str) -> None:
        self.paths = tuple(paths)
        super().__init__(message)


def every_problem(model: str, problems: Iterable[FieldProblem]) -> ValidationError:
    """Several cross-field problems of one model as one error, each at its own paths.

    A model validator that raises a FieldProblem reports only that one; raising this instead
    reports them all (pydantic adds the model's own location, the loader picks the path set in a
    file), so a section with three bad settings gets three lines.
    """
    return ValidationError.from_exception_data(
        model,
        [
            InitErrorDetails(type="value_error", loc=(), input=None, ctx={"error": p})
            for p in problems
        ],
    )


def unknown_key(key: str, known: Iterable[str]) -> str:
    """The message for a key no model knows, with the closest known one (or all of them)."""
    names = list(known)
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys here: {', '.join(names)}"
    return f"unknown key; remove it ({hint})"


def check_absolute(path: PathT, what: str, example: str = "/mnt/panoseti") -> PathT:
    """`path` if it is absolute, else ValueError saying so and how to fix it.

    A daemon's working directory is no base for a path (under systemd it is /), so the
    configuration and InitHpIo refuse relative paths instead of resolving them against it.
    """
    if not path.is_absolute():
        raise ValueError(
            f"{what} '{path}' is not an absolute path; give the full path on the DAQ node, "
            f"e.g. {example}"
        )
    return path


class OutsideRoots(ValueError):
    """A path lies outside every allowed data root (a policy refusal, not a malformed path)."""


def check_within_roots(path: PurePath, roots: Sequence[PurePath], what: str = "data_dir") -> Path:
    """`path` with symlinks and `..` resolved, if that lies in one of `roots` (resolved alike);
    else OutsideRoots naming the roots, or ValueError for a path that cannot be resolved.

    A caller-chosen data_dir is watched recursively by the filesystem sources, so it is held to
    the run directories the operator allowed rather than any directory the daemon can read.
    Reads the filesystem (symlinks): call it off the event loop.
    """
    shown = quote(str(path))
    if "\0" in str(path):
        raise ValueError(f"{what} {shown} contains a NUL character")
    try:
        real = Path(path).resolve()
        allowed = [Path(root).resolve() for root in roots]
    except (OSError, RuntimeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ValueError(f"{what} {shown} cannot be resolved: {reason}") from None
    if any(real.is_relative_to(root) for root in allowed):
        return real
    where = ", ".join(str(root) for root in roots) or "none are configured"
    raise OutsideRoots(
        f"{what} {shown} (resolved: {quote(str(real))}) is outside the allowed data roots "
        f"({where}; daqdata.allowed_data_roots)"
    )


def check_port(port: int, what: str) -> int:
    """A TCP port an operator may configure: 1..65535."""
    if not 1 <= port <= 65535:
        raise ValueError(f"{what}: port {port} is out of range; use 1..65535")
    return port


_FDNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,255}$")


def check_listen_address(address: str) -> str:
    """A gRPC listen address: `host:port`, `[v6]:port`, `unix:///absolute/path` or `systemd:NAME`.

    `systemd:NAME` serves the listening socket(s) a socket unit passes with FileDescriptorName=NAME.
    """
    example = "e.g. '0.0.0.0:50051', '[::]:50051' or 'unix:///run/panoseti/daqdata.sock'"
    address = address.strip()
    if address.startswith("systemd:"):
        name = address.split(":", 1)[1]
        if not _FDNAME.match(name):
            raise ValueError(
                f"{address!r}: systemd:NAME needs the FileDescriptorName= of a socket unit "
                "(letters, digits, _ . @ -), e.g. 'systemd:grpc'"
            )
        return address
    if address.startswith(("unix:", "unix-abstract:")):
        path = address.split(":", 1)[1]
        if path.startswith("//"):
            path = path[2:]
        if not path or path == "/":
            raise ValueError(f"{address!r}: a unix address needs a socket path ({example})")
        return address
    host, sep, port_text = address.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{address!r} is not HOST:PORT or unix:///PATH ({example})")
    if not port_text.isdigit():
        raise ValueError(f"{address!r}: port {port_text!r} is not a number ({example})")
    check_port(int(port_text), repr(address))
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"{address!r}: an IPv6 host must be written in brackets ({example})")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{address!r}: {host} is not an IPv6 address ({example})") from None
        return address
    if not _HOSTNAME.match(host):
        raise ValueError(f"{address!r}: {host!r} is not a host name or IPv4 address ({example})")
    return address


def check_template(template: str, allowed: set[str], required: set[str], what: str) -> str:
    """A str.format template using only `allowed` placeholders and every `required` one."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{what} {template!r} is not a valid template: {exc}") from None
    unknown = names - allowed
    if unknown:
        raise ValueError(
            f"{what} {template!r} uses unknown placeholder(s) "
            f"{', '.join('{' + n + '}' for n in sorted(unknown))}; "
            f"only {', '.join('{' + n + '}' for n in sorted(allowed))} may be used"
        )
    missing = required - names
    if missing:
        raise ValueError(
            f"{what} {template!r} must contain {', '.join('{' + n + '}' for n in sorted(missing))}"
        )
    return template


def check_unique(values: Iterable[object], what: str) -> None:
    seen: set[object] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} lists {value!r} more than once; remove the duplicate")
        seen.add(value)


def check_module_ids(ids: Sequence[int], what: str) -> list[int]:
    """Module ids fit the 16 bits of the Hashpipe socket prefix and appear once."""
    for module_id in ids:
        if not 0 <= module_id <= MAX_MODULE_ID:
            raise ValueError(
                f"{what}: module id {module_id} is out of range; use 0..{MAX_MODULE_ID}"
            )
    check_unique(ids, what)
    return list(ids)


def parse_module_range(spec: str) -> list[int]:
    """Expand a daq_config module list such as '0-127' or '1,3,8-11' into sorted ids."""
    ids: set[int] = set()
    if not spec.strip():
        return []
    for item in spec.split(","):
        match = _RANGE_ITEM.match(item)
        if not match:
            raise ValueError(
                f"module_ids {spec!r}: {item.strip()!r} is not N or N-M; write e.g. '0-127' or '1,3,8-11'"
            )
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if low > high:
            raise ValueError(
                f"module_ids {spec!r}: range {low}-{high} is reversed; write {high}-{low}"
            )
        if high > MAX_MODULE_ID:
            raise ValueError(f"module_ids {spec!r}: {high} is out of range; use 0..{MAX_MODULE_ID}")
        ids.update(range(low, high + 1))
    return sorted(ids)


def format_module_range(ids: Iterable[int]) -> str:
    """The compact range form of module ids: [0, 1, 2, 5] gives '0-2,5'."""
    ordered = sorted(set(ids))
    parts: list[str] = []
    start = prev = None
    for module_id in ordered:
        if prev is not None and module_id == prev + 1:
            prev = module_id
            continue
        if start is not None:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        start = prev = module_id
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(parts)
