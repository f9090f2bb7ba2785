"""Hook points for what the mesh policies do (metrics, logs).

Subclass ``MeshObserver``, override what you need and register it with
``ClientFactory.add_observer``; every method is called synchronously on the
event loop and must not block.
"""

from __future__ import annotations

from ec_recommend.config import Endpoint
from ec_recommend.platform.rpc.breaker import BreakerState


class MeshObserver:
    def breaker_changed(self, service: str, state: BreakerState) -> None:
        """A circuit changed state (closed/open/half_open)."""

    def retried(self, service: str, method: str, code: str, attempt: int) -> None:
        """A call is retried (``attempt`` = 1 for the first retry) after ``code``."""

    def retry_denied(self, service: str, method: str, reason: str) -> None:
        """A retryable failure was not retried: reason is budget, deadline or max_retries."""

    def endpoint_health(self, service: str, endpoint: Endpoint, healthy: bool) -> None:
        """An endpoint left (False) or rejoined (True) the rotation."""

    def call_finished(self, service: str, method: str, code: str, seconds: float) -> None:
        """A call (with all its retries) ended with ``code`` ("OK" on success)."""


class Observers(MeshObserver):
    """Fans every event out to the registered observers."""

    def __init__(self) -> None:
        self.observers: list[MeshObserver] = []

    def breaker_changed(self, service: str, state: BreakerState) -> None:
        for observer in self.observers:
            observer.breaker_changed(service, state)

    def retried(self, service: str, method: str, code: str, attempt: int) -> None:
        for observer in self.observers:
            observer.retried(service, method, code, attempt)

    def retry_denied(self, service: str, method: str, reason: str) -> None:
        for observer in self.observers:
            observer.retry_denied(service, method, reason)

    def endpoint_health(self, service: str, endpoint: Endpoint, healthy: bool) -> None:
        for observer in self.observers:
            observer.endpoint_health(service, endpoint, healthy)

    def call_finished(self, service: str, method: str, code: str, seconds: float) -> None:
        for observer in self.observers:
            observer.call_finished(service, method, code, seconds)
