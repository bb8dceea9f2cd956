"""One typed importer per original file format that clients read: path or dict in, model out.

- hp_io_config.json (InitHpIo payload) → `read_hp_io_config` → `HpIoConfig`
- f9t_config.json5 (receiver settings and chips) → `read_f9t_config` → `UbloxConfig`
- daq_config.json (the DAQ nodes) → `read_daq_config` → `ObservatoryConfig`
- network_config.json (port forwarding) → `read_network_config` → `ObservatoryConfig`

Each translates the file with `config.originals` (the only reading of the format) and validates
the section it fills with the same models and rules as the appliance configuration, so a problem
reads the same wherever the file is used: `FILE:LINE: key.path: what is wrong and the fix`. A dict
is named by the argument it came in (e.g. `hp_io_cfg`). Problems raise `ConfigError` (a
ValueError); warnings (keys the appliance does not use) are logged. The server-side formats,
daq_data_server_config.json and ublox_control_server_config.json, become a whole
`ApplianceConfig` through the loader.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from panoseti_appliance.config.errors import ConfigError, problems_from
from panoseti_appliance.config.files import FileProblems
from panoseti_appliance.config.models import HpIoConfig, ObservatoryConfig, UbloxConfig
from panoseti_appliance.config.originals import OriginalSource, import_original

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)


def read_section(
    source: OriginalSource, kind: str, section: str, model: type[ModelT], name: str | None = None
) -> ModelT:
    """The `section` an original file of `kind` fills, validated as `model`.

    Only that section is validated: a client's file says nothing about the rest of a node's
    configuration, so rules between sections (checked where a daemon loads them) do not apply.
    """
    try:
        imported = import_original(source, expect=kind, name=name)
    except FileProblems as exc:
        raise ConfigError(exc.problems) from None
    for warning in imported.warnings:
        log.warning("%s", warning)
    data: Any = imported.data.get(section, {})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, [imported.layer()], (section,))) from None


def read_hp_io_config(source: OriginalSource | HpIoConfig, name: str = "hp_io_cfg") -> HpIoConfig:
    """An hp_io file (the InitHpIo payload: data_dir, update_interval_seconds, force, …).

    `model_fields_set` tells which settings the file gave (a client fills a missing data_dir
    from the node's daq_config).
    """
    if isinstance(source, HpIoConfig):
        return source
    return read_section(source, "hp_io_config", "hp_io", HpIoConfig, name)


def read_f9t_config(source: OriginalSource, name: str = "f9t_config") -> UbloxConfig:
    """An f9t_config file: the general receiver settings and `chips` (its `f9t_chips`)."""
    return read_section(source, "f9t_config", "ublox", UbloxConfig, name)


def read_daq_config(source: OriginalSource, name: str = "daq_config") -> ObservatoryConfig:
    """A daq_config file: the head node and the DAQ nodes (`port_forwarding` stays empty)."""
    return read_section(source, "daq_config", "observatory", ObservatoryConfig, name)


def read_network_config(source: OriginalSource, name: str = "network_config") -> ObservatoryConfig:
    """A network_config file: only `port_forwarding` of the observatory is filled."""
    return read_section(source, "network_config", "observatory", ObservatoryConfig, name)


def read_observatory(
    daq_config: OriginalSource | ObservatoryConfig,
    network_config: OriginalSource | None = None,
) -> ObservatoryConfig:
    """The DAQ nodes of a daq_config with the port forwarding of an optional network_config.

    An `ObservatoryConfig` (the appliance configuration's section) already holds both.
    """
    if isinstance(daq_config, ObservatoryConfig):
        if network_config:
            raise ConfigError(
                [
                    "network_config: the observatory section has its own port_forwarding; "
                    "give network_config only with a daq_config"
                ]
            )
        return daq_config
    observatory = read_daq_config(daq_config)
    if not network_config:
        return observatory
    forwarding = read_network_config(network_config).port_forwarding
    return observatory.model_copy(update={"port_forwarding": forwarding})
