"""DaqData's Prometheus metrics, read from the daemon's own counters at each scrape.

Names follow Prometheus conventions (`_total` is added to counters by the client library). What an
operator of an unattended node watches: frames in and where they went (published per module and
product, dropped by the framer per reason, discarded by hp_io per reason), uploads and refused
uploads, open streams and what each was sent, and hp_io's state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    StateSetMetricFamily,
)
from prometheus_client.metrics_core import Metric

from panoseti_appliance.daqdata.server.hpio import HpIoState
from panoseti_appliance.daqdata.server.sources.hashpipe import DROP_REASONS

if TYPE_CHECKING:
    from panoseti_appliance.daqdata.server.daemon import DaqDataService

PREFIX = "panoseti_daqdata"


def collect(service: DaqDataService) -> Iterator[Metric]:
    """Every DaqData metric, as the daemon's counters stand now."""
    hub, servicer, engine = service.hub, service.servicer, service.engine

    published = CounterMetricFamily(
        f"{PREFIX}_frames_published",
        "Frames handed to streams, by module and data product.",
        labels=["module", "dp"],
    )
    for (module, dp), count in sorted(hub.published_by_key.items()):
        published.add_metric([str(module), dp], count)
    yield published

    ingested = CounterMetricFamily(
        f"{PREFIX}_frames_ingested", "Valid frames read by each source.", labels=["source"]
    )
    dropped = CounterMetricFamily(
        f"{PREFIX}_frames_dropped",
        "Bad frames a source skipped, by reason (torn, bad header, ...).",
        labels=["source", "reason"],
    )
    for source, stats in sorted(engine.source_stats().items()):
        counts = stats.snapshot()
        ingested.add_metric([source], counts.get("frames_in", 0))
        for reason in DROP_REASONS:
            if counts.get(reason):
                dropped.add_metric([source, reason], counts[reason])
    yield ingested
    yield dropped

    discarded = CounterMetricFamily(
        f"{PREFIX}_frames_discarded",
        "Frames hp_io did not publish, by reason (source not running, module filtered, ...).",
        labels=["reason"],
    )
    for reason, count in sorted(engine.discarded.items()):
        discarded.add_metric([reason], count)
    yield discarded

    yield CounterMetricFamily(
        f"{PREFIX}_images_uploaded",
        "Images accepted by UploadImages.",
        value=servicer.images_uploaded,
    )
    refused = CounterMetricFamily(
        f"{PREFIX}_uploads_refused", "Images refused by UploadImages, by reason.", labels=["reason"]
    )
    for reason, count in sorted(servicer.uploads_refused.items()):
        refused.add_metric([reason], count)
    yield refused

    yield GaugeMetricFamily(
        f"{PREFIX}_streams_open", "Open StreamImages calls.", value=len(servicer.readers)
    )
    sent = CounterMetricFamily(
        f"{PREFIX}_stream_responses_sent",
        "Responses sent on each open stream (a snapshot stream skips frames by design).",
        labels=["stream"],
    )
    for reader_id, reader in sorted(servicer.readers.items()):
        sent.add_metric([str(reader_id)], reader.sent)
    yield sent
    yield CounterMetricFamily(
        f"{PREFIX}_responses_sent", "Responses sent on all streams.", value=servicer.responses_sent
    )

    yield StateSetMetricFamily(
        f"{PREFIX}_hp_io_state",
        "hp_io's state (RUNNING while ingesting).",
        value={state.value: state is engine.state for state in HpIoState},
    )
