"""The appliance's one configuration: models, layered loading, error rendering.

Every daemon and tool reads its settings through `load_config` (or, with argparse,
`add_config_argument` + `load_config_from_args`); nothing else parses config files. An invalid
configuration raises `ConfigError`; print `render_problems(err)` and exit non-zero.
"""

from panoseti_appliance.config.loader import (
    ConfigError,
    LoadedConfig,
    add_config_argument,
    load_config,
    load_config_details,
    load_config_from_args,
    render_problems,
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
    "render_problems",
]
