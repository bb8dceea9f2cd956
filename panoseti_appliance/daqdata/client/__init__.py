"""The astronomer's side of DaqData: clients, their host lists, and what they do with images.

`api` holds the sync and asyncio clients; `hosts` and `rpc` read the original client
configuration files and make the calls; `encoding` chooses and converts how pixels travel;
`parse` turns responses into headers and pixel arrays; `plot` draws them (the `[plot]` extra).
"""

from panoseti_appliance.daqdata.client.api import AioDaqDataClient, DaqDataClient

__all__ = ["AioDaqDataClient", "DaqDataClient"]
