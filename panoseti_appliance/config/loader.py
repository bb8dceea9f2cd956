"""Layered loading of the appliance configuration.

SKELETON: reads one YAML file, then PANOSETI_<SECTION>__<FIELD> environment variables, then
explicit overrides. The configuration issue adds drop-ins, sources per value and error rendering.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from panoseti_appliance.config.models import ApplianceConfig

ENV_PREFIX = "PANOSETI_"
DEFAULT_CONFIG_PATH = Path("/etc/panoseti/panoseti.yaml")


class ConfigError(Exception):
    """The configuration is invalid; `problems` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge mappings recursively; any other value (lists included) replaces."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == "PANOSETI_CONFIG":
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        node = layer
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return layer


def load_config(
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ApplianceConfig:
    """Load defaults, the main YAML file, the environment and overrides (lowest first)."""
    env = os.environ if environ is None else environ
    path = Path(config_file) if config_file else None
    if path is None and env.get("PANOSETI_CONFIG"):
        path = Path(env["PANOSETI_CONFIG"])
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    merged: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError([f"{path}: {exc}"]) from exc
        if not isinstance(data, dict):
            raise ConfigError([f"{path}: top level must be a mapping"])
        merged = deep_merge(merged, data)
    merged = deep_merge(merged, _env_layer(env))
    if overrides:
        merged = deep_merge(merged, overrides)
    try:
        return ApplianceConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(
            [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        ) from exc
