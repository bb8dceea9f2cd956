"""DaqData: ingest PANOSETI frames (Hashpipe sockets, files, uploads) and stream them to clients."""
