"""Layered loading of the appliance configuration, with the origin of every value.

Layers, lowest priority first (docs/configuration.md, "Where settings come from"):

1. the model defaults;
2. the main file: `config_file` (a command's `--config`), else `$PANOSETI_CONFIG`, else
   `/etc/panoseti/panoseti.yaml` when it exists. A `.json`/`.json5` main file is read as one of
   the original panoseti_grpc files (see `config.originals`);
3. drop-ins `panoseti.d/*.yaml` in the main file's directory (`/etc/panoseti/panoseti.d` when there
   is no main file), in name order;
4. environment variables `PANOSETI_<SECTION>__<FIELD>[__<SUBFIELD>…]` of the given `environ`
   (the process's when none is given), read by pydantic-settings: lists and mappings as JSON,
   anything else as given;
5. explicit overrides from the command (`--set key.path=value`).

Mappings merge key by key; any other value, lists included, replaces the lower layer's value.
Every layer is an explicit source of one `ApplianceConfig.from_sources` call, so loads never
share state. Everything is validated at once: `load_config` either returns a complete
`ApplianceConfig` or raises `ConfigError` listing every problem as
`FILE:LINE: key.path: what is wrong and the fix` (`env NAME: …` for the environment), so a daemon
can print them and exit non-zero before it starts anything.

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
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from panoseti_appliance.config.errors import (
    DEFAULT_ORIGIN,
    ConfigError,
    problems_from,
    render_problems,
    source_of,
)
from panoseti_appliance.config.files import FileProblems
from panoseti_appliance.config.models import ApplianceConfig, model_in
from panoseti_appliance.config.originals import import_original, is_original
from panoseti_appliance.config.sources import (
    CONFIG_ENV,
    OVERRIDE_ORIGIN,
    KeyPath,
    Layer,
    dotted,
    env_layer,
    overrides_layer,
)
from panoseti_appliance.config.yamlfile import read_yaml

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "OVERRIDE_ORIGIN",
    "ConfigError",
    "LoadedConfig",
    "add_config_argument",
    "build_config",
    "load_config",
    "load_config_details",
    "load_config_from_args",
    "render_problems",
]

log = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = Path("/etc/panoseti/panoseti.yaml")
DROPIN_DIR_NAME = "panoseti.d"


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
        return source_of(self.layers, path) or DEFAULT_ORIGIN

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
        inner = model_in(info.annotation) if info is not None else None
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
        return imported.layer(), imported.warnings
    data, lines = read_yaml(path)
    fill_empty_sections(data)
    origins = {key: f"{path}:{line}" for key, line in lines.items()}
    return Layer(name=str(path), data=data, origins=origins, default_origin=f"{path}:1"), []


def parse_override(text: str) -> dict[str, Any]:
    """`daqdata.max_concurrent_rpcs=7` as `{'daqdata': {'max_concurrent_rpcs': 7}}` (JSON value,
    else the plain string)."""
    key, sep, raw = text.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not sep or not all(parts):
        raise ValueError(
            f"--set {text!r}: write KEY.PATH=VALUE, e.g. daqdata.max_concurrent_rpcs=7"
        )
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    out: dict[str, Any] = {}
    node = out
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
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
    if main is not None and not main.exists():
        problems.append(f"{main}: file not found; check the path (--config / {CONFIG_ENV})")
        main_and_dropins = dropin_paths(main)
    else:
        main_and_dropins = ([main] if main is not None else []) + dropin_paths(main)
    for path in main_and_dropins:
        try:
            layer, found = read_file_layer(path)
        except FileProblems as exc:
            problems.extend(exc.problems)
            continue
        layers.append(layer)
        warnings.extend(found)
    env, env_problems = env_layer(ApplianceConfig, environ)
    problems.extend(env_problems)
    if env.data:
        layers.append(env)
    if overrides:
        layers.append(overrides_layer(ApplianceConfig, deep_merge({}, overrides)))
    if problems:
        raise ConfigError(problems)
    return layers, warnings


def build_config(layers: Sequence[Layer]) -> ApplianceConfig:
    """Validate the layers (lowest first) as one configuration; ConfigError names each bad value."""
    try:
        return ApplianceConfig.from_sources([layer.source(ApplianceConfig) for layer in layers])
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, layers)) from exc


def load_config_details(
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Like `load_config`, also returning the layers (with origins) and the warnings."""
    env = os.environ if environ is None else environ
    layers, warnings = gather_layers(config_file, overrides, env)
    config = build_config(layers)
    for warning in warnings:
        log.warning("%s", warning)
    return LoadedConfig(config=config, layers=layers, warnings=warnings)


def load_config(
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ApplianceConfig:
    """Load defaults, main file, drop-ins, environment and overrides (lowest first); validate.

    `environ` is the environment to read (`os.environ` when None).
    """
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
