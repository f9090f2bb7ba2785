"""Retry decisions for RPCs: which failures count, and how many retries in total.

The waits themselves come from ``platform.retry`` (the one WithRetry).

``RetryBudgetBucket`` keeps retries to a fixed share of requests: each request
earns ``ratio`` of a token, each retry spends one. During an outage the
retries stop once the reserve is gone, so the service that is down sees at
most (1 + ratio) times its normal traffic, not (1 + max_retries) times.
"""

from __future__ import annotations

from ec_recommend.platform import errors
from ec_recommend.platform.rpc.mesh import RetryBudget

# Failures that say nothing about the service's health: the caller's own
# mistake or a business rule. They never trip a breaker or eject an endpoint.
_CALLER_ERRORS = frozenset(
    {
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "FAILED_PRECONDITION",
        "ABORTED",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "RESOURCE_EXHAUSTED",
        "PAYMENT_DECLINED",
    }
)


def counts_as_failure(error: errors.ServiceError) -> bool:
    """Whether ``error`` means the service (not the request) is in trouble."""
    return error.code not in _CALLER_ERRORS and not refused_for_dependency(error)


def refused_for_dependency(error: errors.ServiceError) -> bool:
    """The service answered at once that a circuit of its own, to a service
    it depends on, is open: it is up and working, so its circuit and its
    endpoint stay as they are (only the routes that need the dependency fail)."""
    return error.code == "UNAVAILABLE" and error.details.get("reason") == "circuit_open"


class RetryBudgetBucket:
    """A token bucket shared by every call to one service."""

    def __init__(self, budget: RetryBudget) -> None:
        self.ratio = budget.ratio
        self.capacity = budget.reserve + 1.0
        self._tokens = budget.reserve

    @property
    def tokens(self) -> float:
        return self._tokens

    def on_request(self) -> None:
        self._tokens = min(self.capacity, self._tokens + self.ratio)

    def try_spend(self) -> bool:
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
