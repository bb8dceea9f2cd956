"""Configuration layers and the pydantic-settings sources that feed them to `ApplianceConfig`.

A `Layer` is one place settings came from (the main file, a drop-in, the environment, a command's
overrides) with, for every key path it sets, a human-readable origin such as `FILE:LINE` or
`env PANOSETI_X__Y`, and the settings source pydantic-settings reads it through. The loader hands
the sources to `ApplianceConfig.from_sources` explicitly; nothing here is ambient state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
)
from pydantic_settings.sources.utils import parse_env_vars

from panoseti_appliance.config.checks import unknown_key

#: A key path inside the configuration: section, field, list index, …
KeyPath = tuple[str | int, ...]

ENV_PREFIX = "PANOSETI_"
ENV_DELIMITER = "__"
CONFIG_ENV = "PANOSETI_CONFIG"
OVERRIDE_ORIGIN = "command line"


def dotted(path: KeyPath) -> str:
    """`('ublox', 'chips', 0, 'uid')` as `ublox.chips[0].uid`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass
class Layer:
    """One source of settings: its data, where each key path in it was written, its reader."""

    name: str  # e.g. the file path, "environment", "command line"
    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[KeyPath, str] = field(default_factory=dict)
    default_origin: str = ""
    #: What pydantic-settings reads for this layer; None means `data` as read from a file.
    settings_source: PydanticBaseSettingsSource | None = None

    def origin(self, path: KeyPath) -> str | None:
        """Where `path` (or the nearest enclosing key this layer sets) was written, if here."""
        if not _has_path(self.data, path):
            return None
        for cut in range(len(path), 0, -1):
            found = self.origins.get(path[:cut])
            if found:
                return found
        return self.default_origin or self.name

    def source(self, settings_cls: type[BaseSettings]) -> PydanticBaseSettingsSource:
        """The settings source of this layer, for `ApplianceConfig.from_sources`."""
        return self.settings_source or FileSettingsSource(settings_cls, self.data, self.name)


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


class FileSettingsSource(PydanticBaseSettingsSource):
    """The data of one config file, exactly as read.

    Custom because the file readers keep the line of every key (for `FILE:LINE` in errors), which
    pydantic-settings' file sources do not, and InitSettingsSource would match top-level keys
    regardless of case.
    """

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any], name: str) -> None:
        super().__init__(settings_cls)
        self.data = data
        self.name = name

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        value = self.data.get(field_name)
        return value, field_name, isinstance(value, dict)

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)

    def __repr__(self) -> str:
        return f"FileSettingsSource({self.name!r})"


class EnvironmentSource(EnvSettingsSource):
    """`PANOSETI_<SECTION>__<FIELD>` variables of a given mapping, read by pydantic-settings.

    Two additions to EnvSettingsSource: it reads `environ` instead of `os.environ`, so a load's
    environment is an argument, and a list or mapping value that is not JSON is kept as the raw
    string, so validation reports it against its variable instead of failing the whole source.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self.environ = environ
        super().__init__(
            settings_cls,
            case_sensitive=False,
            env_prefix=ENV_PREFIX,
            env_nested_delimiter=ENV_DELIMITER,
            env_parse_none_str="null",
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self.environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            return value


def env_layer(
    settings_cls: type[BaseSettings], environ: Mapping[str, str]
) -> tuple[Layer, list[str]]:
    """The environment's PANOSETI_<SECTION>__<FIELD> variables as a layer, and their problems.

    pydantic-settings parses the values; what is checked here is what it cannot tell: a name
    with an empty part, an unknown section (which it would silently ignore) and a variable
    beneath one that sets a list or a scalar (whose value it would silently drop).
    """
    problems: list[str] = []
    named: dict[str, KeyPath] = {}
    for name in environ:
        rest = name[len(ENV_PREFIX) :] if name.upper().startswith(ENV_PREFIX) else ""
        if ENV_DELIMITER not in rest or name.upper() == CONFIG_ENV:
            continue
        parts = rest.lower().split(ENV_DELIMITER)
        if not all(parts):
            problems.append(f"env {name}: empty key part; write PANOSETI_<SECTION>__<FIELD>")
        elif parts[0] not in settings_cls.model_fields:
            known = settings_cls.model_fields
            problems.append(f"env {name}: {parts[0]}: {unknown_key(parts[0], known)}")
        else:
            named[name] = tuple(parts)
    # A section given as JSON first, its own variables after, whatever the environment's order.
    ordered = sorted(named, key=lambda n: (len(named[n]), n))
    source = EnvironmentSource(settings_cls, {n: environ[n] for n in ordered})
    layer = Layer(name="environment", data=source(), settings_source=source)
    for name in ordered:
        path = named[name]
        layer.origins[path] = f"env {name}"
        node: Any = layer.data
        for depth, part in enumerate(path[:-1]):
            node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                holder = layer.origins.get(path[: depth + 1], "another variable")
                problems.append(
                    f"env {name}: {dotted(path[: depth + 1])} is already set to a non-mapping "
                    f"by {holder}; unset one of them"
                )
                break
    return layer, problems


def overrides_layer(settings_cls: type[BaseSettings], overrides: dict[str, Any]) -> Layer:
    """A command's explicit settings (a nested mapping) as the top layer, read as init kwargs."""
    return Layer(
        name=OVERRIDE_ORIGIN,
        data=overrides,
        default_origin=OVERRIDE_ORIGIN,
        settings_source=InitSettingsSource(settings_cls, init_kwargs=overrides),
    )
