"""What the push path reports: open connections, messages sent, slow clients.

``RealtimeMetrics`` is the hook the hub calls; ``prometheus_metrics()`` backs
it with collectors on the process registry (``telemetry.metrics``), so the
numbers show on the gateway's ``/metrics``.
"""

from __future__ import annotations

from typing import Protocol

from aioprometheus.collectors import Counter, Gauge

from ec_recommend.platform.telemetry.metrics import Metrics, process_metrics


class RealtimeMetrics(Protocol):
    def opened(self) -> None: ...
    def closed(self) -> None: ...
    def sent(self, count: int) -> None: ...
    def slow_client(self) -> None: ...


class CountingMetrics:
    """Plain counters (unit tests, benches)."""

    def __init__(self) -> None:
        self.open = 0
        self.messages_sent = 0
        self.slow_clients = 0

    def opened(self) -> None:
        self.open += 1

    def closed(self) -> None:
        self.open -= 1

    def sent(self, count: int) -> None:
        self.messages_sent += count

    def slow_client(self) -> None:
        self.slow_clients += 1


class PrometheusMetrics:
    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self._open = Gauge("ws_connections_open", "Open WebSocket connections.", registry=r)
        self._sent = Counter("ws_messages_sent_total", "Messages pushed to clients.", registry=r)
        self._slow = Counter(
            "ws_slow_client_disconnects_total",
            "Connections closed because their send queue was full.",
            registry=r,
        )
        self._open.set({}, 0)

    def opened(self) -> None:
        self._open.inc({})

    def closed(self) -> None:
        self._open.dec({})

    def sent(self, count: int) -> None:
        self._sent.add({}, count)

    def slow_client(self) -> None:
        self._slow.inc({})


_by_registry: dict[int, PrometheusMetrics] = {}


def prometheus_metrics(metrics: Metrics | None = None) -> PrometheusMetrics:
    """The realtime collectors of ``metrics`` (the process's), registered once."""
    metrics = metrics or process_metrics()
    key = id(metrics.registry)
    if key not in _by_registry:
        _by_registry[key] = PrometheusMetrics(metrics)
    return _by_registry[key]
