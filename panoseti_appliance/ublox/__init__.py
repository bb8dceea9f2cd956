"""UbloxControl: own the node's ZED-F9T serial port, configure it, poll it and stream its UBX frames."""
