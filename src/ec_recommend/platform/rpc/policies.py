"""The policy model the mesh applies per target service (see mesh.py for the file)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ec_recommend.platform.retry import Backoff


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    retry_on: frozenset[str] = frozenset({"UNAVAILABLE"})  # error codes
    retry_timeout: float = 5.0  # bound on each try
    initial_delay: float = 0.05
    max_delay: float = 1.0
    multiplier: float = 2.0
    jitter: float = 0.2  # each delay is scaled by a random factor in [1-j, 1+j]

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.initial_delay, self.max_delay, self.multiplier, self.jitter)


@dataclass(frozen=True)
class RetryBudget:
    """Retries may use at most ``ratio`` of the requests, plus a small reserve."""

    ratio: float = 0.2
    reserve: float = 10.0


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 5  # consecutive failures that open the circuit
    timeout: float = 30.0  # how long it stays open before one trial call


@dataclass(frozen=True)
class OutlierPolicy:
    """When an endpoint is taken out of rotation, and how it comes back."""

    consecutive_failures: int = 2
    ejection_time: float = 5.0
    probe_timeout: float = 1.0


@dataclass(frozen=True)
class ServicePolicy:
    name: str
    protocol: str = "grpc"
    timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    budget: RetryBudget = field(default_factory=RetryBudget)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    outlier: OutlierPolicy = field(default_factory=OutlierPolicy)
    idempotent_methods: frozenset[str] = frozenset()
    # writes that are safe to repeat when the call carries an idempotency key
    idempotent_with_key: frozenset[str] = frozenset()
    # method name (or "*") → service identities allowed to call it
    allowed_callers: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def is_idempotent(self, method: str, *, has_key: bool) -> bool:
        return method in self.idempotent_methods or (has_key and method in self.idempotent_with_key)

    def callers_of(self, method: str) -> frozenset[str] | None:
        """Who may call ``method``; None means the allow-list does not restrict it."""
        found = self.allowed_callers.get(method)
        return self.allowed_callers.get("*") if found is None else found


@dataclass(frozen=True)
class MeshConfig:
    name: str = "ec-recommend-mesh"
    defaults: ServicePolicy = field(default_factory=lambda: ServicePolicy(name="*"))
    services: Mapping[str, ServicePolicy] = field(default_factory=dict)

    def policy(self, service: str) -> ServicePolicy:
        found = self.services.get(service)
        return found if found is not None else replace(self.defaults, name=service)
