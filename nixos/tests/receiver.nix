# The ZED-F9T of the tests: settings.ublox.chips entry for a receiver with this UID, at the position
# of the example fleet's daq1 receiver (examples/fleet/settings.nix; the emulator accepts any).
uid: builtins.head (import ../../examples/fleet/settings.nix).daq1.ublox.chips // { inherit uid; }
