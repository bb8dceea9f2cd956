"""The node side of UbloxControl: the daemon that owns the receiver's serial port.

`link` reads and writes UBX frames on the port; `plan` turns an InitF9t request into the
messages to send; `f9t` runs that plan against the receiver; `retries` paces re-initialisation
after the device comes back; `servicer` answers the RPCs; `daemon` wires them into a service.
"""
