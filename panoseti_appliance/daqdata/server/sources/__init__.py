"""Ingestion sources of the DaqData daemon: Hashpipe sockets, file polling, named-pipe signals.

Each source turns bytes into Frames and hands them to a sink (the hub); see base.Source.
"""

from panoseti_appliance.daqdata.server.sources.base import Source, SourceError, SourceStats

__all__ = ["Source", "SourceError", "SourceStats"]
