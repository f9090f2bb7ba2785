"""Mesh observer events become the breaker, retry and client latency metrics."""

from __future__ import annotations

from ec_recommend.config import Endpoint
from ec_recommend.platform.rpc.breaker import BreakerState
from ec_recommend.platform.telemetry.mesh import MeshMetrics
from ec_recommend.platform.telemetry.metrics import Metrics


def test_mesh_events_update_the_metrics() -> None:
    metrics = Metrics()
    observer = MeshMetrics(metrics)
    observer.breaker_changed("product", BreakerState.OPEN)
    observer.retried("product", "GetProduct", "UNAVAILABLE", 1)
    observer.retry_denied("product", "GetProduct", "budget")
    observer.retry_denied("product", "GetProduct", "deadline")
    observer.endpoint_health("product", Endpoint("127.0.0.1", 50051), False)
    observer.call_finished("product", "GetProduct", "UNAVAILABLE", 0.2)

    assert metrics.circuit_breaker_state.get({"service": "product", "state": "open"}) == 1
    assert metrics.circuit_breaker_state.get({"service": "product", "state": "closed"}) == 0
    assert metrics.grpc_retries.get({"service": "product", "method": "GetProduct"}) == 1
    assert metrics.retry_budget_exhausted.get({"service": "product"}) == 1
    endpoint = {"service": "product", "endpoint": "127.0.0.1:50051"}
    assert metrics.endpoint_healthy.get(endpoint) == 0
    latency = {"service": "product", "method": "GetProduct", "status": "UNAVAILABLE"}
    assert metrics.grpc_client_duration.get(latency)["count"] == 1


def test_a_breaker_shows_closed_from_the_first_call_until_it_changes() -> None:
    metrics = Metrics()
    observer = MeshMetrics(metrics)
    observer.call_finished("order", "CreateOrder", "OK", 0.01)
    assert metrics.circuit_breaker_state.get({"service": "order", "state": "closed"}) == 1
    observer.breaker_changed("order", BreakerState.OPEN)
    observer.call_finished("order", "CreateOrder", "UNAVAILABLE", 0.01)
    assert metrics.circuit_breaker_state.get({"service": "order", "state": "open"}) == 1
    assert metrics.circuit_breaker_state.get({"service": "order", "state": "closed"}) == 0
