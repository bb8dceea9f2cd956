"""The node side of DaqData: the daemon and what it runs.

Frames flow top to bottom: `sources/` (Hashpipe sockets, file polling, named-pipe signals) and
`hpio` (which of them runs, and the simulator) feed `hub` (the newest frame per module and data
product, fanned out to readers), which `servicer` streams to clients; `daemon` wires them into a
service for the runtime, and `handover` keeps Hashpipe's connections across restarts.
"""
