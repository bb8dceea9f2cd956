"""The appliance's one configuration: models, layered loading, error rendering.

Every daemon and tool reads its settings through `load_config`; nothing else parses config files.
"""

from panoseti_appliance.config.loader import ConfigError, load_config
from panoseti_appliance.config.models import (
    ApplianceConfig,
    DaqDataConfig,
    HpIoConfig,
    LoggingConfig,
    SimulatorConfig,
    UbloxConfig,
)

__all__ = [
    "ApplianceConfig",
    "ConfigError",
    "DaqDataConfig",
    "HpIoConfig",
    "LoggingConfig",
    "SimulatorConfig",
    "UbloxConfig",
    "load_config",
]
