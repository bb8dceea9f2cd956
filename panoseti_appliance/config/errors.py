"""Configuration problems as operators read them: `ORIGIN: key.path: what is wrong and the fix`.

ORIGIN is where the offending value was written (`FILE:LINE`, `env NAME`, `command line`, or the
name a client gave its dict), found through the layers the value came from.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from panoseti_appliance.config.checks import FieldProblem, unknown_key
from panoseti_appliance.config.models import ApplianceConfig, model_in
from panoseti_appliance.config.sources import KeyPath, Layer, dotted

DEFAULT_ORIGIN = "default"


class ConfigError(ValueError):
    """The configuration is invalid; `problems` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def render_problems(err: ConfigError) -> str:
    """The text every command prints for an invalid configuration (one problem per line)."""
    count = len(err.problems)
    head = f"invalid configuration ({count} problem{'s' if count != 1 else ''}):"
    return "\n".join([head, *err.problems])


def source_of(layers: Sequence[Layer], path: KeyPath) -> str | None:
    """The origin of `path` in the highest layer that sets it, if any does."""
    for layer in reversed(layers):
        origin = layer.origin(path)
        if origin is not None:
            return origin
    return None


def _fields_at(path: KeyPath) -> list[str]:
    """Field names of the model at `path` (for 'did you mean' hints)."""
    model: type[BaseModel] = ApplianceConfig
    for part in path:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return []
        inner = model_in(info.annotation)
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _message(error: ErrorDetails, path: KeyPath) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return unknown_key(str(path[-1]), _fields_at(path[:-1]))
    if kind == "missing":
        return "required setting is missing; add it"
    message = error["msg"].removeprefix("Value error, ")
    if kind != "value_error" and "input" in error and not isinstance(error["input"], dict | list):
        message += f" (got {error['input']!r})"
    return message


def _clean_loc(loc: tuple[int | str, ...]) -> KeyPath:
    """Drop pydantic's union/validator tags (e.g. 'function-after[...]') from an error location."""
    return tuple(
        p
        for p in loc
        if isinstance(p, int) or ("[" not in p and p not in {"str", "int", "float", "bool"})
    )


def _path_parts(dotted_path: str) -> KeyPath:
    return tuple(int(p) if p.isdigit() else p for p in dotted_path.split("."))


def problems_from(
    exc: ValidationError, layers: Sequence[Layer], section: KeyPath = ()
) -> list[str]:
    """Each validation error as `ORIGIN: key.path: message`, ORIGIN the layer that set it.

    `section` is where the validated model sits in the whole configuration (`('hp_io',)` when
    only that section was validated), so paths and origins are those of the whole.
    """
    out: list[str] = []
    for error in exc.errors():
        loc = (*section, *_clean_loc(error["loc"]))
        cause = (error.get("ctx") or {}).get("error")
        candidates: list[KeyPath] = [loc]
        if isinstance(cause, FieldProblem):
            candidates = [(*loc, *_path_parts(p)) for p in cause.paths]
        origin, path = None, candidates[0]
        for candidate in candidates:
            origin = source_of(layers, candidate)
            if origin is not None:
                path = candidate
                break
        if origin is None:
            for cut in range(len(path) - 1, 0, -1):
                origin = source_of(layers, path[:cut])
                if origin is not None:
                    break
        out.append(f"{origin or DEFAULT_ORIGIN}: {dotted(path)}: {_message(error, path)}")
    return out
