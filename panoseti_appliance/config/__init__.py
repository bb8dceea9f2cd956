"""The appliance's one configuration: models, layered loading, error rendering, original files.

Every daemon and tool reads its settings through `load_config` (or, with argparse,
`add_config_argument` + `load_config_from_args`); the original PANOSETI JSON files a client is
given are read by the typed importers (`read_hp_io_config`, `read_f9t_config`,
`read_observatory`). Nothing else parses config files. An invalid configuration raises
`ConfigError` (a ValueError); print `render_problems(err)` and exit non-zero.
"""

from panoseti_appliance.config.errors import ConfigError, render_problems
from panoseti_appliance.config.importers import (
    read_daq_config,
    read_f9t_config,
    read_hp_io_config,
    read_network_config,
    read_observatory,
)
from panoseti_appliance.config.loader import (
    LoadedConfig,
    add_config_argument,
    load_config,
    load_config_details,
    load_config_from_args,
)
from panoseti_appliance.config.models import (
    ApplianceConfig,
    ChipConfig,
    DaqDataConfig,
    HpIoConfig,
    LoggingConfig,
    ObservatoryConfig,
    SimulatorConfig,
    UbloxConfig,
)

__all__ = [
    "ApplianceConfig",
    "ChipConfig",
    "ConfigError",
    "DaqDataConfig",
    "HpIoConfig",
    "LoadedConfig",
    "LoggingConfig",
    "ObservatoryConfig",
    "SimulatorConfig",
    "UbloxConfig",
    "add_config_argument",
    "load_config",
    "load_config_details",
    "load_config_from_args",
    "read_daq_config",
    "read_f9t_config",
    "read_hp_io_config",
    "read_network_config",
    "read_observatory",
    "render_problems",
]
