"""UbloxControl's Prometheus metrics, read from the servicer and its link at each scrape.

What an operator watches on an unattended node: is the receiver up, how many UBX messages flow,
how many subscribers, how often the daemon had to re-initialise it, and the timing quality the
receiver reports itself: qErr of the newest TIM-TP (the quantisation error of the next pulse) and
tAcc of the newest NAV-TIMEUTC (its time accuracy estimate).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

if TYPE_CHECKING:
    from panoseti_appliance.ublox.server.daemon import UbloxService

PREFIX = "panoseti_ublox"
#: (identity, field, metric, help, scale to the metric's unit)
TIMING_FIELDS = (
    ("TIM-TP", "qErr", "qerr_seconds", "qErr of the newest TIM-TP.", 1e-12),
    ("NAV-TIMEUTC", "tAcc", "time_accuracy_seconds", "tAcc of the newest NAV-TIMEUTC.", 1e-9),
)


def collect(service: UbloxService) -> Iterator[Metric]:
    """Every UbloxControl metric, as the servicer's counters stand now."""
    servicer = service.servicer
    yield GaugeMetricFamily(
        f"{PREFIX}_receiver_up",
        "1 while the receiver is initialised and its link is open.",
        value=1 if servicer.link_up else 0,
    )
    yield CounterMetricFamily(
        f"{PREFIX}_messages_received",
        "UBX messages received from the receiver.",
        value=servicer.frames_received,
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_subscribers", "Open CaptureUblox streams.", value=servicer.subscriber_count
    )
    yield CounterMetricFamily(
        f"{PREFIX}_reinit_attempts",
        "Re-initialisations the daemon started by itself after the device came back or failed.",
        value=servicer.reinit_attempts,
    )
    for identity, name, metric, text, scale in TIMING_FIELDS:
        frame = servicer.latest(identity)
        value = getattr(frame.message, name, None) if frame is not None else None
        if isinstance(value, int | float):
            yield GaugeMetricFamily(f"{PREFIX}_{metric}", text, value=value * scale)
