"""Layered loading of the appliance configuration, with the origin of every value.

Layers, lowest priority first (docs/configuration.md, "Where settings come from"):

1. the model defaults;
2. the main file: `config_file` (a command's `--config`), else `$PANOSETI_CONFIG`, else
   `/etc/panoseti/panoseti.yaml` when it exists. A `.json`/`.json5` main file is read as one of
   the original panoseti_grpc files (see `config.originals`);
3. drop-ins `panoseti.d/*.yaml` in the main file's directory (`/etc/panoseti/panoseti.d` when there
   is no main file), in name order;
4. environment variables `PANOSETI_<SECTION>__<FIELD>[__<SUBFIELD>…]`; a value that parses as
   JSON is used as such (lists, mappings, numbers, booleans), anything else as a plain string;
5. explicit overrides from the command (`--set key.path=value`).

Mappings merge key by key; any other value, lists included, replaces the lower layer's value.
Everything is validated at once: `load_config` either returns a complete `ApplianceConfig` or
raises `ConfigError` listing every problem as `FILE:LINE: key.path: what is wrong and the fix`
(`env NAME: …` for the environment), so a daemon can print them and exit non-zero before it
starts anything.

Daemons use the two argparse helpers::

    parser = argparse.ArgumentParser()
    add_config_argument(parser)          # --config FILE, --set KEY=VALUE
    args = parser.parse_args()
    try:
        config = load_config_from_args(args)
    except ConfigError as err:
        print(render_problems(err), file=sys.stderr)
        return 1
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from panoseti_appliance.config.checks import FieldProblem
from panoseti_appliance.config.models import ApplianceConfig
from panoseti_appliance.config.originals import import_original, is_original
from panoseti_appliance.config.sources import KeyPath, Layer, activate_layers, dotted
from panoseti_appliance.config.yamlfile import FileProblems, read_yaml

log = logging.getLogger(__name__)

ENV_PREFIX = "PANOSETI_"
CONFIG_ENV = "PANOSETI_CONFIG"
DEFAULT_CONFIG_PATH = Path("/etc/panoseti/panoseti.yaml")
DROPIN_DIR_NAME = "panoseti.d"
DEFAULT_ORIGIN = "default"
OVERRIDE_ORIGIN = "command line"


class ConfigError(Exception):
    """The configuration is invalid; `problems` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def render_problems(err: ConfigError) -> str:
    """The text every command prints for an invalid configuration (one problem per line)."""
    count = len(err.problems)
    head = f"invalid configuration ({count} problem{'s' if count != 1 else ''}):"
    return "\n".join([head, *err.problems])


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge mappings recursively; any other value (lists included) replaces."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class LoadedConfig:
    """A validated configuration plus what it was made of (for `panoseti config check/show`)."""

    config: ApplianceConfig
    layers: list[Layer]
    warnings: list[str] = field(default_factory=list)

    def source_of(self, path: KeyPath) -> str:
        """Where the value at `path` came from: the highest layer that sets it, else default."""
        return _source_of(self.layers, path) or DEFAULT_ORIGIN

    def sources(self) -> dict[str, str]:
        """`{dotted key path: origin}` for every leaf value of the configuration."""
        out: dict[str, str] = {}
        for path, _ in leaves(self.config.model_dump(mode="json")):
            out[dotted(path)] = self.source_of(path)
        return out


def leaves(data: Any, path: KeyPath = ()) -> Iterable[tuple[KeyPath, Any]]:
    """Every (key path, value) whose value is not a non-empty mapping; lists are values."""
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from leaves(value, (*path, key))
    else:
        yield path, data


def _source_of(layers: list[Layer], path: KeyPath) -> str | None:
    for layer in reversed(layers):
        origin = layer.origin(path)
        if origin is not None:
            return origin
    return None


# --- finding and reading the layers -------------------------------------------------------


def main_config_path(config_file: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    """The main file: the explicit one, else $PANOSETI_CONFIG, else the system file if present."""
    if config_file:
        return Path(config_file)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def dropin_paths(main: Path | None) -> list[Path]:
    """`panoseti.d/*.yaml` beside the main file (or the system directory), in name order."""
    directory = (main.parent if main is not None else DEFAULT_CONFIG_PATH.parent) / DROPIN_DIR_NAME
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.yaml") if p.is_file())


def fill_empty_sections(data: dict[str, Any], model: type[BaseModel] = ApplianceConfig) -> None:
    """Treat `section:` with nothing under it (YAML null) as an empty section, not an error.

    Operators comment out every key of a section and leave its header; that means "defaults".
    """
    for key, value in data.items():
        info = model.model_fields.get(key)
        inner = _model_in(info.annotation) if info is not None else None
        if info is None or inner is None:
            continue
        if value is None and inner is info.annotation:
            data[key] = {}
        elif isinstance(value, dict):
            fill_empty_sections(value, inner)


def read_file_layer(path: Path) -> tuple[Layer, list[str]]:
    """One file as a layer plus its warnings; FileProblems when it cannot be used."""
    if is_original(path):
        imported = import_original(path)
        return imported.layer(str(path)), imported.warnings
    data, lines = read_yaml(path)
    fill_empty_sections(data)
    origins = {key: f"{path}:{line}" for key, line in lines.items()}
    return Layer(name=str(path), data=data, origins=origins, default_origin=f"{path}:1"), []


def env_layer(environ: Mapping[str, str]) -> tuple[Layer, list[str]]:
    """PANOSETI_<SECTION>__<FIELD> variables as a layer; problems for unusable combinations."""
    layer = Layer(name="environment")
    problems: list[str] = []
    names = sorted(
        (n for n in environ if n.startswith(ENV_PREFIX) and "__" in n and n != CONFIG_ENV),
        key=lambda n: (n.count("__"), n),
    )
    for name in names:
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if not all(parts):
            problems.append(f"env {name}: empty key part; write PANOSETI_<SECTION>__<FIELD>")
            continue
        path: KeyPath = tuple(parts)
        value = parse_env_value(environ[name])
        node = layer.data
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                holder = next(
                    (o for p, o in layer.origins.items() if p == path[: depth + 1]),
                    "another variable",
                )
                problems.append(
                    f"env {name}: {dotted(path[: depth + 1])} is already set to a non-mapping by "
                    f"{holder}; unset one of them"
                )
                break
            node = child
        else:
            existing = node.get(parts[-1])
            node[parts[-1]] = (
                deep_merge(existing, value)
                if isinstance(existing, dict) and isinstance(value, dict)
                else value
            )
            layer.origins[path] = f"env {name}"
    return layer, problems


def parse_env_value(raw: str) -> Any:
    """JSON when it parses (lists, mappings, numbers, true/false/null), else the plain string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def overrides_layer(overrides: Mapping[str, Any]) -> Layer:
    """A command's explicit settings (nested mapping) as the top layer."""
    return Layer(
        name=OVERRIDE_ORIGIN, data=deep_merge({}, overrides), default_origin=OVERRIDE_ORIGIN
    )


def parse_override(text: str) -> dict[str, Any]:
    """`daqdata.max_concurrent_rpcs=7` as `{'daqdata': {'max_concurrent_rpcs': 7}}` (JSON value)."""
    key, sep, raw = text.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not sep or not all(parts):
        raise ValueError(
            f"--set {text!r}: write KEY.PATH=VALUE, e.g. daqdata.max_concurrent_rpcs=7"
        )
    out: dict[str, Any] = {}
    node = out
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = parse_env_value(raw)
    return out


def gather_layers(
    config_file: str | Path | None,
    overrides: Mapping[str, Any] | None,
    environ: Mapping[str, str],
) -> tuple[list[Layer], list[str]]:
    """Every layer above the defaults, lowest first, and the warnings met reading them."""
    problems: list[str] = []
    warnings: list[str] = []
    layers: list[Layer] = []
    main = main_config_path(config_file, environ)
    for path in ([main] if main is not None else []) + dropin_paths(main):
        try:
            layer, found = read_file_layer(path)
        except FileProblems as exc:
            problems.extend(exc.problems)
            continue
        layers.append(layer)
        warnings.extend(found)
    env, env_problems = env_layer(environ)
    problems.extend(env_problems)
    if env.data:
        layers.append(env)
    if overrides:
        layers.append(overrides_layer(overrides))
    if problems:
        raise ConfigError(problems)
    return layers, warnings


# --- validation and error rendering ---------------------------------------------------------


def _fields_at(path: KeyPath) -> list[str]:
    """Field names of the model at `path` (for 'did you mean' hints)."""
    model: type[BaseModel] = ApplianceConfig
    for part in path:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return []
        inner = _model_in(info.annotation)
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _message(error: ErrorDetails, path: KeyPath) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _fields_at(path[:-1])
        close = difflib.get_close_matches(str(path[-1]), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys here: {', '.join(known)}"
        return f"unknown key; remove it ({hint})"
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


def problems_from(exc: ValidationError, layers: list[Layer]) -> list[str]:
    """Each validation error as `ORIGIN: key.path: message`, ORIGIN the layer that set it."""
    out: list[str] = []
    for error in exc.errors():
        loc = _clean_loc(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        candidates: list[KeyPath] = [loc]
        if isinstance(cause, FieldProblem):
            candidates = [(*loc, *_path_parts(p)) for p in cause.paths]
        origin, path = None, candidates[0]
        for candidate in candidates:
            origin = _source_of(layers, candidate)
            if origin is not None:
                path = candidate
                break
        if origin is None:
            for cut in range(len(path) - 1, 0, -1):
                origin = _source_of(layers, path[:cut])
                if origin is not None:
                    break
        out.append(f"{origin or DEFAULT_ORIGIN}: {dotted(path)}: {_message(error, path)}")
    return out


def _path_parts(dotted_path: str) -> KeyPath:
    return tuple(int(p) if p.isdigit() else p for p in dotted_path.split("."))


def _retry_plain_strings(
    exc: ValidationError, layers: list[Layer], environ: Mapping[str, str]
) -> bool:
    """A variable meant as a string but parsed as JSON (PANOSETI_X__GROUP=1000): use it raw."""
    changed = False
    for error in exc.errors():
        if error["type"] != "string_type":
            continue
        loc = _clean_loc(error["loc"])
        for layer in reversed(layers):
            origin = layer.origin(loc)
            if origin is None:
                continue
            if layer.name == "environment" and origin.startswith("env ") and loc in layer.origins:
                node: Any = layer.data
                for part in loc[:-1]:
                    node = node[part]
                node[loc[-1]] = environ[origin[4:]]
                changed = True
            break
    return changed


def build_config(layers: list[Layer], environ: Mapping[str, str] | None = None) -> ApplianceConfig:
    """Validate the merged layers with pydantic-settings; ConfigError names each bad value."""
    for _ in range(2):
        try:
            with activate_layers(layers):
                return ApplianceConfig()
        except ValidationError as exc:
            if environ is not None and _retry_plain_strings(exc, layers, environ):
                continue
            raise ConfigError(problems_from(exc, layers)) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def load_config_details(
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Like `load_config`, also returning the layers (with origins) and the warnings."""
    env = os.environ if environ is None else environ
    layers, warnings = gather_layers(config_file, overrides, env)
    config = build_config(layers, env)
    for warning in warnings:
        log.warning("%s", warning)
    return LoadedConfig(config=config, layers=layers, warnings=warnings)


def load_config(
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ApplianceConfig:
    """Load defaults, main file, drop-ins, environment and overrides (lowest first); validate."""
    return load_config_details(config_file, overrides, environ).config


def add_config_argument(parser: argparse.ArgumentParser, *, nested: bool = False) -> None:
    """Add `--config FILE` and repeatable `--set KEY.PATH=VALUE` to a daemon's or tool's parser.

    `nested=True` is for a subcommand's parser that repeats options of its parent: its options
    then have no default, so they do not reset what was given before the subcommand's name.
    """
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS if nested else None,
        help=f"main config file (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG_PATH} if present); "
        f"drop-ins are read from {DROPIN_DIR_NAME}/ beside it",
    )
    add_set_argument(parser, nested=nested)


def add_set_argument(parser: argparse.ArgumentParser, *, nested: bool = False) -> None:
    """Add the repeatable `--set KEY.PATH=VALUE` override (the highest configuration layer)."""
    parser.add_argument(
        "--set",
        dest="config_overrides",
        metavar="KEY.PATH=VALUE",
        action="append",
        default=argparse.SUPPRESS if nested else [],
        help="override one setting (JSON value), e.g. --set daqdata.max_concurrent_rpcs=7",
    )


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The merged `--set` overrides of parsed arguments; ConfigError for a malformed one."""
    merged: dict[str, Any] = {}
    problems: list[str] = []
    for text in getattr(args, "config_overrides", None) or []:
        try:
            merged = deep_merge(merged, parse_override(text))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(problems)
    return merged


def load_config_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> ApplianceConfig:
    """`load_config` driven by the arguments `add_config_argument` added."""
    return load_config(getattr(args, "config", None), overrides_from_args(args), environ)
