"""The astronomer's side of UbloxControl: clients and the terminal display of their messages."""

from panoseti_appliance.ublox.client.api import (
    AioUbloxControlClient,
    UbloxControlClient,
    chip_config,
    load_f9t_config,
    to_struct,
)

__all__ = [
    "AioUbloxControlClient",
    "UbloxControlClient",
    "chip_config",
    "load_f9t_config",
    "to_struct",
]
