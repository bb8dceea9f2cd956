"""The DAQ simulator's parts: source frames, the step loop's emitters, and their counters.

`panoseti_appliance.daqdata.sim.simulator` is the entry the daemon and `panoseti sim` use; this
package holds one module per job (loading and restamping frames, one emitter per mode).
"""
