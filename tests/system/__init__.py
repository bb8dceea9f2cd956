"""System tests: a real systemd (container) and a real kernel with udev (VM) running the appliance."""
