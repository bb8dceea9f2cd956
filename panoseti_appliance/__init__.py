"""panoseti-appliance: the software that runs on every PANOSETI DAQ node.

DaqData (images from Hashpipe, files, or uploads, streamed to astronomers) and UbloxControl
(the node's ZED-F9T timing receiver), with their clients, CLI, plots and configuration.
"""

__version__ = "0.1.0"
