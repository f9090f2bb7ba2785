"""The process's Prometheus metrics; the only module that touches aioprometheus.

One ``Metrics`` per process (``process_metrics()``), shared by every service,
consumer and the gateway it hosts; the ``service``/``queue`` labels tell them
apart. Callers record through the typed methods below, never through the
collectors, so label names stay consistent and values stay bounded: label
values are service names, route templates, status names, queue names and
tiers, never ids or raw paths.

Gauges that describe state elsewhere (DB pools) are refreshed by collectors
registered with ``on_scrape``, which run just before each rendering.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

from aioprometheus import histogram
from aioprometheus.collectors import Counter, Gauge, Histogram, Registry
from aioprometheus.mypy_types import LabelsType, NumericValueType
from aioprometheus.renderer import render

LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    float("inf"),
)

BREAKER_STATES: Final = ("closed", "open", "half_open")

Collector = Callable[["Metrics"], None]


class Metrics:
    """Every metric a process exposes, on its own registry."""

    def __init__(self) -> None:
        self.registry = Registry()
        r = self.registry
        self._collectors: list[Collector] = []
        # The seed's four (section 8.2).
        self.grpc_request_duration = LatencyHistogram(
            "grpc_request_duration_seconds",
            "Server-side duration of gRPC calls.",
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.http_request_total = Counter(
            "http_request_total", "HTTP requests answered by the gateway.", registry=r
        )
        self.queue_message_processed = Counter(
            "queue_message_processed_total", "Queue messages handled, by outcome.", registry=r
        )
        self.circuit_breaker_state = Gauge(
            "circuit_breaker_state",
            "1 for the state each client-side circuit breaker is in, 0 for the others.",
            registry=r,
        )
        # What operators need besides.
        self.grpc_client_duration = LatencyHistogram(
            "grpc_client_request_duration_seconds",
            "Client-side duration of gRPC calls, retries included.",
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.http_request_duration = LatencyHistogram(
            "http_request_duration_seconds",
            "Gateway HTTP request latency.",
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.http_in_flight = Gauge(
            "http_requests_in_flight", "HTTP requests being handled.", registry=r
        )
        self.rate_limited = Counter(
            "rate_limit_rejected_total", "Requests rejected by the rate limiter.", registry=r
        )
        self.grpc_retries = Counter(
            "grpc_client_retries_total", "gRPC call attempts that were retries.", registry=r
        )
        self.retry_budget_exhausted = Counter(
            "grpc_client_retry_budget_exhausted_total",
            "Retries skipped because the retry budget was spent.",
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "outbox_backlog_events", "Recorded events not yet published.", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "outbox_oldest_unsent_age_seconds",
            "Age of the oldest event not yet published (0 when none).",
            registry=r,
        )
        self.dlq_depth = Gauge(
            "queue_dlq_messages", "Messages waiting in a dead-letter queue.", registry=r
        )
        self.consumer_lag = Gauge(
            "queue_consumer_lag_seconds",
            "Age of the oldest message of the last batch a consumer received, at receipt.",
            registry=r,
        )
        self.endpoint_healthy = Gauge(
            "grpc_client_endpoint_healthy",
            "1 while a service endpoint is in the client's rotation, 0 while ejected.",
            registry=r,
        )
        self.db_pool_in_use = Gauge(
            "db_pool_connections_in_use", "Database connections checked out.", registry=r
        )
        self.db_pool_size = Gauge(
            "db_pool_connections", "Database connections the pool holds open.", registry=r
        )

        # Histogram children of every call's two observations, by (service,
        # method, status): aioprometheus turns a label dict into its key
        # (sorted JSON) on every observation; a child is observed directly.
        self._grpc_server_children: dict[tuple[str, str, str], Any] = {}
        self._grpc_client_children: dict[tuple[str, str, str], Any] = {}

    # --- recording -------------------------------------------------------

    def observe_grpc(self, service: str, method: str, status: str, seconds: float) -> None:
        _observe(
            self.grpc_request_duration,
            self._grpc_server_children,
            (service, method, status),
            seconds,
        )

    def observe_grpc_client(self, service: str, method: str, status: str, seconds: float) -> None:
        _observe(
            self.grpc_client_duration,
            self._grpc_client_children,
            (service, method, status),
            seconds,
        )

    def observe_http(
        self, service: str, endpoint: str, method: str, status: int, seconds: float
    ) -> None:
        labels = {"service": service, "endpoint": endpoint, "method": method}
        self.http_request_total.inc({**labels, "status": str(status)})
        self.http_request_duration.observe(labels, seconds)

    def http_started(self, service: str) -> None:
        self.http_in_flight.inc({"service": service})

    def http_finished(self, service: str) -> None:
        self.http_in_flight.dec({"service": service})

    def http_route(self, service: str, endpoint: str, method: str) -> HttpRoute:
        """``observe_http`` for one route, with its label lookups done once."""
        return HttpRoute(self, service, endpoint, method)

    def http_in_flight_of(self, service: str) -> InFlight:
        """``http_started``/``http_finished`` for one service, its labels resolved once."""
        return InFlight(self.http_in_flight, {"service": service})

    def rate_limit_rejected(self, tier: str) -> None:
        self.rate_limited.inc({"tier": tier})

    def message_processed(self, queue: str, status: str, count: int = 1) -> None:
        self.queue_message_processed.add({"queue": queue, "status": status}, count)

    def breaker_state(self, service: str, state: str) -> None:
        """Mark ``state`` as the one the breaker of ``service`` is in."""
        if state not in BREAKER_STATES:
            raise ValueError(f"unknown circuit breaker state {state!r}")
        for candidate in BREAKER_STATES:
            value = 1 if candidate == state else 0
            self.circuit_breaker_state.set({"service": service, "state": candidate}, value)

    def retried(self, service: str, method: str) -> None:
        self.grpc_retries.inc({"service": service, "method": method})

    def retry_budget_spent(self, service: str) -> None:
        self.retry_budget_exhausted.inc({"service": service})

    def endpoint_health(self, service: str, endpoint: str, healthy: bool) -> None:
        """``endpoint`` is a configured host:port, so the label stays bounded."""
        self.endpoint_healthy.set({"service": service, "endpoint": endpoint}, 1 if healthy else 0)

    def outbox_state(self, service: str, backlog: int, oldest_age: float) -> None:
        self.outbox_backlog.set({"service": service}, backlog)
        self.outbox_oldest_age.set({"service": service}, max(oldest_age, 0.0))

    def dlq_messages(self, queue: str, count: int) -> None:
        self.dlq_depth.set({"queue": queue}, count)

    def lag(self, queue: str, seconds: float) -> None:
        self.consumer_lag.set({"queue": queue}, max(seconds, 0.0))

    def db_pool(self, service: str, in_use: int, size: int) -> None:
        self.db_pool_in_use.set({"service": service}, in_use)
        self.db_pool_size.set({"service": service}, size)

    # --- reading (the operator console, edge/gateway/operations.py) --------

    def breaker_states(self) -> dict[str, str]:
        """The state each circuit breaker is in, by service."""
        return {
            labels["service"]: labels["state"]
            for labels, value in _series(self.circuit_breaker_state)
            if value
        }

    def outbox_states(self) -> dict[str, tuple[int, float]]:
        """(backlog, oldest unsent age in seconds) by service."""
        ages = {labels["service"]: value for labels, value in _series(self.outbox_oldest_age)}
        return {
            labels["service"]: (int(value), float(ages.get(labels["service"], 0.0)))
            for labels, value in _series(self.outbox_backlog)
        }

    def rate_limit_rejections(self) -> dict[str, int]:
        return {labels["tier"]: int(value) for labels, value in _series(self.rate_limited)}

    def http_latency_histograms(self) -> list[tuple[dict[str, str], dict[Any, float]]]:
        """Per (service, endpoint, method): cumulative counts by bucket upper bound,
        plus ``"count"`` and ``"sum"``."""
        return [
            (dict(labels), dict(values)) for labels, values in _series(self.http_request_duration)
        ]

    # --- exposition ------------------------------------------------------

    def on_scrape(self, collector: Collector) -> Callable[[], None]:
        """Run ``collector`` before every rendering; returns its remover."""
        self._collectors.append(collector)

        def remove() -> None:
            if collector in self._collectors:
                self._collectors.remove(collector)

        return remove

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        for collector in list(self._collectors):
            collector(self)
        # Always text: every Prometheus scraper accepts it.
        body, headers = render(self.registry, [])
        return body, str(headers["Content-Type"])


def _observe(
    histogram: Histogram,
    children: dict[tuple[str, str, str], Any],
    labels: tuple[str, str, str],
    seconds: float,
) -> None:
    """``histogram.observe`` of the (service, method, status) ``labels``, through
    its child once the first observation has made (and validated) it."""
    child = children.get(labels)
    if child is not None:
        child.observe(seconds)
        return
    named = {"service": labels[0], "method": labels[1], "status": labels[2]}
    histogram.observe(named, seconds)
    children[labels] = histogram.get_value(named)


class _Counts(histogram.Histogram):
    """aioprometheus's histogram value, counted per bucket: one bisection per
    observation instead of a comparison and an increment per bucket (it is
    observed twice per RPC); the cumulative ``buckets`` are made when read,
    by a scrape, the same numbers in the same order."""

    def __init__(self, *bounds: float) -> None:
        self._bounds: list[float] = []
        self._counts: list[int] = []
        super().__init__(*bounds)  # validates, and sets ``buckets`` to zeros
        self._last = self._bounds[-1]  # +Inf

    @property  # type: ignore[override]
    def buckets(self) -> OrderedDict[float, int]:
        cumulative: OrderedDict[float, int] = OrderedDict()
        total = 0
        for bound, count in zip(self._bounds, self._counts, strict=True):
            total += count
            cumulative[bound] = total
        return cumulative

    @buckets.setter
    def buckets(self, initial: dict[float, int]) -> None:
        # only aioprometheus's __init__ sets them: every bound, at zero
        self._bounds = list(initial)
        self._counts = [0] * len(self._bounds)

    def observe(self, value: float | int) -> None:
        # NaN is no bucket's, as in aioprometheus (``value <= bound`` is False)
        if value <= self._last:
            # the first bound >= value: that bucket and every later one hold it
            self._counts[bisect_left(self._bounds, value)] += 1
        self.sum += value
        self.observations += 1


class LatencyHistogram(Histogram):
    """``Histogram`` whose series count per bucket (``_Counts``); the same
    exposition (tests compare the /metrics text)."""

    def add(self, labels: LabelsType, value: NumericValueType) -> None:
        # aioprometheus's ``Histogram.add``, making a ``_Counts``
        if type(value) not in (float, int):
            raise TypeError("Histogram only works with digits (int, float)")
        counts: Any
        try:
            counts = self.get_value(labels)
        except KeyError:
            counts = _Counts(*self.upper_bounds)
            self.set_value(labels, counts)
        counts.observe(float(value))  # type: ignore[arg-type]

    observe = add


def _series(collector: Counter | Gauge | Histogram) -> list[tuple[dict[str, str], Any]]:
    """A collector's (labels, value) pairs; values are numbers, or bucket dicts of histograms."""
    return list(collector.get_all())


class InFlight:
    """A gauge child: aioprometheus turns a label dict into its key (sorted JSON)
    on every update; this keeps the key and updates the value where it lives."""

    __slots__ = ("_key", "_store")

    def __init__(self, gauge: Gauge, labels: dict[str, str]) -> None:
        gauge.set(labels, gauge.values.get(labels, 0))  # validated and present from now on
        self._store = gauge.values.store
        self._key = gauge.values.__keytransform__(labels)  # type: ignore[no-untyped-call]

    def inc(self) -> None:
        self._store[self._key] += 1

    def dec(self) -> None:
        self._store[self._key] -= 1


class HttpRoute:
    """``http_request_total`` and ``http_request_duration_seconds`` children of one
    service, endpoint and method; the same series ``observe_http`` records."""

    __slots__ = ("_histogram", "_labels", "_metrics", "_totals")

    def __init__(self, metrics: Metrics, service: str, endpoint: str, method: str) -> None:
        self._metrics = metrics
        self._labels = {"service": service, "endpoint": endpoint, "method": method}
        self._histogram: Any = None  # created by the first observation, as observe_http does
        self._totals: dict[int, bytes | str] = {}

    def observe(self, status: int, seconds: float) -> None:
        totals = self._metrics.http_request_total
        key = self._totals.get(status)
        if key is None:
            labels = {**self._labels, "status": str(status)}
            totals.inc(labels)
            self._totals[status] = totals.values.__keytransform__(labels)  # type: ignore[no-untyped-call]
        else:
            totals.values.store[key] += 1
        if self._histogram is None:
            durations = self._metrics.http_request_duration
            durations.observe(self._labels, seconds)
            self._histogram = durations.get_value(self._labels)
        else:
            self._histogram.observe(seconds)


_process_metrics: Metrics | None = None


def process_metrics() -> Metrics:
    """The metrics of this process (created on first use)."""
    global _process_metrics
    if _process_metrics is None:
        _process_metrics = Metrics()
    return _process_metrics
