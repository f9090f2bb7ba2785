"""The metrics a scraper sees: names, label sets, values, bounded label values."""

from __future__ import annotations

import math
import random
import re

import pytest
from aioprometheus.collectors import Histogram, Registry
from aioprometheus.renderer import render

from ec_recommend.platform.telemetry.metrics import LATENCY_BUCKETS, LatencyHistogram, Metrics


def samples(text: str, name: str) -> dict[str, float]:
    """``{label text: value}`` of every sample line of ``name``."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(\{{.*\}})? (\S+)", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


def test_seed_metrics_render_with_their_labels() -> None:
    metrics = Metrics()
    metrics.observe_grpc("product", "GetProduct", "OK", 0.003)
    metrics.observe_grpc("product", "GetProduct", "NOT_FOUND", 0.002)
    metrics.observe_http("gateway", "/api/v1/products/{id}", "GET", 200, 0.01)
    metrics.observe_http("gateway", "/api/v1/products/{id}", "GET", 200, 0.02)
    metrics.message_processed("order-processing-queue", "success")
    metrics.breaker_state("product", "closed")

    body, content_type = metrics.render()
    text = body.decode()

    assert content_type.startswith("text/plain")
    assert "# TYPE grpc_request_duration_seconds histogram" in text
    counts = samples(text, "grpc_request_duration_seconds_count")
    assert counts == {
        '{method="GetProduct",service="product",status="OK"}': 1.0,
        '{method="GetProduct",service="product",status="NOT_FOUND"}': 1.0,
    }
    buckets = samples(text, "grpc_request_duration_seconds_bucket")
    assert buckets['{le="0.005",method="GetProduct",service="product",status="OK"}'] == 1.0
    assert buckets['{le="0.0025",method="GetProduct",service="product",status="OK"}'] == 0.0
    assert samples(text, "http_request_total") == {
        '{endpoint="/api/v1/products/{id}",method="GET",service="gateway",status="200"}': 2.0
    }
    assert samples(text, "queue_message_processed_total") == {
        '{queue="order-processing-queue",status="success"}': 1.0
    }


def test_repeated_call_observations_land_in_one_series_each() -> None:
    metrics = Metrics()
    for seconds in (0.003, 0.004, 0.2):
        metrics.observe_grpc("product", "GetProduct", "OK", seconds)
        metrics.observe_grpc_client("product", "GetProduct", "OK", seconds)
    metrics.observe_grpc_client("product", "GetProduct", "UNAVAILABLE", 0.001)
    text = metrics.render()[0].decode()
    ok = '{method="GetProduct",service="product",status="OK"}'
    assert samples(text, "grpc_request_duration_seconds_count") == {ok: 3.0}
    assert samples(text, "grpc_request_duration_seconds_sum")[ok] == pytest.approx(0.207)
    assert samples(text, "grpc_client_request_duration_seconds_count") == {
        ok: 3.0,
        '{method="GetProduct",service="product",status="UNAVAILABLE"}': 1.0,
    }
    buckets = samples(text, "grpc_client_request_duration_seconds_bucket")
    assert buckets['{le="0.005",method="GetProduct",service="product",status="OK"}'] == 2.0


def test_breaker_state_is_one_hot_and_follows_changes() -> None:
    metrics = Metrics()
    metrics.breaker_state("product", "closed")
    metrics.breaker_state("product", "open")
    text = metrics.render()[0].decode()
    assert samples(text, "circuit_breaker_state") == {
        '{service="product",state="closed"}': 0.0,
        '{service="product",state="open"}': 1.0,
        '{service="product",state="half_open"}': 0.0,
    }
    with pytest.raises(ValueError, match="unknown circuit breaker state"):
        metrics.breaker_state("product", "melted")


def test_in_flight_goes_up_and_down() -> None:
    metrics = Metrics()
    metrics.http_started("gateway")
    metrics.http_started("gateway")
    metrics.http_finished("gateway")
    text = metrics.render()[0].decode()
    assert samples(text, "http_requests_in_flight") == {'{service="gateway"}': 1.0}


def test_scrape_collectors_run_before_rendering_and_can_be_removed() -> None:
    metrics = Metrics()
    calls: list[int] = []

    def collect(target: Metrics) -> None:
        calls.append(1)
        target.db_pool("order", in_use=len(calls), size=5)

    remove = metrics.on_scrape(collect)
    metrics.render()
    text = metrics.render()[0].decode()
    assert samples(text, "db_pool_connections_in_use") == {'{service="order"}': 2.0}
    remove()
    metrics.render()
    assert len(calls) == 2


def test_operational_gauges_never_go_negative() -> None:
    metrics = Metrics()
    metrics.outbox_state("order", backlog=3, oldest_age=-0.5)  # clock skew
    metrics.lag("email-notification-queue", -1.0)
    metrics.dlq_messages("email-notification-queue-dlq", 2)
    metrics.rate_limit_rejected("anonymous")
    metrics.retried("product", "ReserveStock")
    metrics.retry_budget_spent("product")
    text = metrics.render()[0].decode()
    assert samples(text, "outbox_backlog_events") == {'{service="order"}': 3.0}
    assert samples(text, "outbox_oldest_unsent_age_seconds") == {'{service="order"}': 0.0}
    assert samples(text, "queue_consumer_lag_seconds") == {
        '{queue="email-notification-queue"}': 0.0
    }
    assert samples(text, "queue_dlq_messages") == {'{queue="email-notification-queue-dlq"}': 2.0}
    assert samples(text, "rate_limit_rejected_total") == {'{tier="anonymous"}': 1.0}
    assert samples(text, "grpc_client_retries_total") == {
        '{method="ReserveStock",service="product"}': 1.0
    }
    assert samples(text, "grpc_client_retry_budget_exhausted_total") == {'{service="product"}': 1.0}


# -- histograms counted per bucket: the same exposition ------------------------------


def test_latency_histograms_expose_what_aioprometheus_histograms_do() -> None:
    rng = random.Random("buckets")
    ours, theirs = Registry(), Registry()
    fast = LatencyHistogram("d_seconds", "Durations.", registry=ours, buckets=LATENCY_BUCKETS)
    stock = Histogram("d_seconds", "Durations.", registry=theirs, buckets=LATENCY_BUCKETS)
    edges = [*LATENCY_BUCKETS, 0.0, -1.0, 1e9, math.inf, math.nan, 3, 0]
    for n in range(3000):
        labels = {"service": rng.choice(["product", "order"]), "status": rng.choice(["OK", "X"])}
        value = rng.choice(edges) if n % 7 == 0 else rng.expovariate(20.0)
        fast.observe(labels, value)
        stock.observe(labels, value)
        if n % 500 == 0:  # a scrape in between changes nothing
            assert render(ours, [])[0] == render(theirs, [])[0]
    assert render(ours, [])[0] == render(theirs, [])[0]
    with pytest.raises(TypeError):
        fast.observe({"service": "x", "status": "OK"}, "1")  # type: ignore[arg-type]


def test_metrics_use_per_bucket_counts_for_every_duration() -> None:
    metrics = Metrics()
    for histogram in (
        metrics.grpc_request_duration,
        metrics.grpc_client_duration,
        metrics.http_request_duration,
    ):
        assert isinstance(histogram, LatencyHistogram)
