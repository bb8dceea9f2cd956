"""A faithful ZED-F9T for tests and demos without a receiver.

`device` holds what the receiver says (`F9tReceiver`) and puts it on a pty (`F9tEmulator`);
`memory` carries it in process instead (`MemoryReceiver`, a transport the daemon opens directly);
`f9tregisters` is its configuration database; `f9tmessages` builds the UBX messages it sends.
"""

from panoseti_appliance.ublox.emulator.device import (
    DEFAULT_LLH,
    DEFAULT_UID,
    F9tEmulator,
    F9tReceiver,
)
from panoseti_appliance.ublox.emulator.memory import MemoryReceiver, MemoryTransport

__all__ = [
    "DEFAULT_LLH",
    "DEFAULT_UID",
    "F9tEmulator",
    "F9tReceiver",
    "MemoryReceiver",
    "MemoryTransport",
]
