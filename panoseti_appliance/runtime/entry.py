"""The daemons' console scripts, import-light until the descriptors from systemd are taken.

A restarted DaqData has its Hashpipe producers' connections back from the fd store a few
milliseconds after exec and drains them on a thread (daqdata.handover) while grpc, pydantic and
numpy load, so a producer's small send buffer never fills during a restart.
"""

from __future__ import annotations

from collections.abc import Sequence

from panoseti_appliance.runtime.inherited import Inherited


def daqdata(argv: Sequence[str] | None = None) -> int:
    """`panoseti-daqdata`."""
    inherited = Inherited.from_environment()
    from panoseti_appliance.daqdata.server.handover import Drain

    drain = Drain.start(inherited)
    try:
        from panoseti_appliance.daqdata.server.daemon import main

        return main(argv, inherited, drain)
    finally:
        drain.close()  # only what the daemon did not take (it exited early)


def ubloxcontrol(argv: Sequence[str] | None = None) -> int:
    """`panoseti-ubloxcontrol`."""
    inherited = Inherited.from_environment()
    from panoseti_appliance.ublox.server.daemon import main

    return main(argv, inherited)
