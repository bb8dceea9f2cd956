"""The `panoseti` command: one subcommand module per area (pff, config, daq, sim, ublox, emulate)."""
