"""Mesh policy metrics: breaker states, retries, budget exhaustion, client latency.

``MeshMetrics`` is the observer the client factory of every process
registers (``ClientFactory.add_observer``).
"""

from __future__ import annotations

from ec_recommend.config import Endpoint
from ec_recommend.platform.rpc.breaker import BreakerState
from ec_recommend.platform.rpc.observers import MeshObserver
from ec_recommend.platform.telemetry.metrics import Metrics, process_metrics


class MeshMetrics(MeshObserver):
    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics or process_metrics()
        self._known: set[str] = set()  # services whose breaker state is on record

    def breaker_changed(self, service: str, state: BreakerState) -> None:
        self._known.add(service)
        self.metrics.breaker_state(service, state.value)

    def retried(self, service: str, method: str, code: str, attempt: int) -> None:
        self.metrics.retried(service, method)

    def retry_denied(self, service: str, method: str, reason: str) -> None:
        if reason == "budget":
            self.metrics.retry_budget_spent(service)

    def endpoint_health(self, service: str, endpoint: Endpoint, healthy: bool) -> None:
        self.metrics.endpoint_health(service, str(endpoint), healthy)

    def call_finished(self, service: str, method: str, code: str, seconds: float) -> None:
        if service not in self._known:
            # Breakers start closed without an event; show that from the first call.
            self._known.add(service)
            self.metrics.breaker_state(service, BreakerState.CLOSED.value)
        self.metrics.observe_grpc_client(service, method, code, seconds)
