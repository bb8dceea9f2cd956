"""The daemon runner both services start through (docs/development.md, "Layout").

The data path is the services' own; what they share lives here, so a fix lands once:
`entry` (the console scripts, import-light), `inherited` (descriptors passed by systemd),
`listen` and `relay` (gRPC listen addresses, bound or adopted), `supervisor` (every long-running
task), `notify` (sd_notify and the watchdog), `logs` (journald or plain stderr) and `runner` (the
order of start-up and shutdown, exit codes, health and the STATUS line).
"""
