"""A daemon's Prometheus endpoint: off unless `metrics_listen` is set (docs/monitoring.md).

prometheus-client serves `/metrics` from its own thread; each scrape asks the service's collector
for its counters as they stand, so nothing on the data path updates a metric per frame. The
process collector adds RSS, open fds and CPU time, which unattended nodes are watched for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from panoseti_appliance.runtime.listen import ListenError, bind_problem, tcp_parts


class MetricSource(Protocol):
    """What a service gives the endpoint: its metrics as they stand at a scrape."""

    def collect(self) -> Iterable[Metric]: ...


class _Adapter(Collector):
    def __init__(self, source: MetricSource) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        return self.source.collect()


class MetricsEndpoint:
    """`/metrics` on one TCP address, for the daemon's lifetime."""

    def __init__(self, address: str, setting: str, source: MetricSource) -> None:
        self.address = address
        self.setting = setting
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(_Adapter(source))
        self._server: WSGIServer | None = None

    def open(self) -> None:
        """Bind and serve; ListenError naming the setting and the fix if the address is unusable."""
        parts = tcp_parts(self.address)
        if parts is None:
            raise ListenError(f"{self.setting}: {self.address!r} is not HOST:PORT; fix it")
        host, port = parts
        try:
            self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ListenError(bind_problem(self.setting, self.address, exc)) from None

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the kernel's choice for port 0)."""
        assert self._server is not None
        return int(self._server.server_port)

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
