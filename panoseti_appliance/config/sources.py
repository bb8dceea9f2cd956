"""Configuration layers and the pydantic-settings source that feeds them to `ApplianceConfig`.

A `Layer` is one place settings came from (the main file, a drop-in, the environment, a command's
overrides) with, for every key path it sets, a human-readable origin such as `FILE:LINE` or
`env PANOSETI_X__Y`. The loader makes the layers active while it builds the model, so that
pydantic-settings merges them in priority order; outside `activate_layers` the model holds only
its defaults.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

#: A key path inside the configuration: section, field, list index, …
KeyPath = tuple[str | int, ...]


def dotted(path: KeyPath) -> str:
    """`('ublox', 'chips', 0, 'uid')` as `ublox.chips[0].uid`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass
class Layer:
    """One source of settings: its data and where each key path in it was written."""

    name: str  # e.g. the file path, "environment", "overrides"
    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[KeyPath, str] = field(default_factory=dict)
    default_origin: str = ""

    def origin(self, path: KeyPath) -> str | None:
        """Where `path` (or the nearest enclosing key this layer sets) was written, if here."""
        if not _has_path(self.data, path):
            return None
        for cut in range(len(path), 0, -1):
            found = self.origins.get(path[:cut])
            if found:
                return found
        return self.default_origin or self.name


def _has_path(data: Any, path: KeyPath) -> bool:
    node = data
    for part in path:
        if isinstance(node, dict):
            if part not in node:
                return False
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False
    return True


class LayerSettingsSource(PydanticBaseSettingsSource):
    """pydantic-settings source returning one layer's (already cleaned) data."""

    def __init__(self, settings_cls: type[BaseSettings], layer: Layer) -> None:
        super().__init__(settings_cls)
        self.layer = layer

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        value = self.layer.data.get(field_name)
        return value, field_name, isinstance(value, dict)

    def __call__(self) -> dict[str, Any]:
        return dict(self.layer.data)

    def __repr__(self) -> str:
        return f"LayerSettingsSource({self.layer.name!r})"


_ACTIVE: ContextVar[tuple[Layer, ...]] = ContextVar("panoseti_config_layers", default=())


@contextlib.contextmanager
def activate_layers(layers: list[Layer]) -> Iterator[None]:
    """Make `layers` (lowest priority first) the sources of `ApplianceConfig()` in this context."""
    token = _ACTIVE.set(tuple(layers))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def active_layer_sources(settings_cls: type[BaseSettings]) -> list[PydanticBaseSettingsSource]:
    """The active layers as settings sources, highest priority first (pydantic-settings order)."""
    return [LayerSettingsSource(settings_cls, layer) for layer in reversed(_ACTIVE.get())]
