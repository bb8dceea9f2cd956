"""A faithful ZED-F9T on a pseudo-terminal, for tests and demos without a receiver.

`device` is the emulator (a pty that answers UBX like the receiver); `f9tregisters` is its
configuration database; `f9tmessages` builds the UBX messages it sends.
"""

from panoseti_appliance.ublox.emulator.device import DEFAULT_LLH, DEFAULT_UID, F9tEmulator

__all__ = ["DEFAULT_LLH", "DEFAULT_UID", "F9tEmulator"]
