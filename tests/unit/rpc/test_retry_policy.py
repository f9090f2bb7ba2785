"""Backoff schedule, retry budget and which errors count against a service."""

from __future__ import annotations

import itertools

import pytest

from ec_recommend.platform import errors
from ec_recommend.platform.rpc.mesh import RetryBudget, RetryPolicy
from ec_recommend.platform.rpc.retry import RetryBudgetBucket, counts_as_failure, delays


def test_backoff_grows_by_the_multiplier_up_to_max_delay() -> None:
    policy = RetryPolicy(initial_delay=0.1, multiplier=2.0, max_delay=0.5, jitter=0.0)
    assert list(itertools.islice(delays(policy), 5)) == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_jitter_spreads_each_delay_within_its_band(draw: float) -> None:
    policy = RetryPolicy(initial_delay=0.1, multiplier=2.0, max_delay=10.0, jitter=0.2)
    first, second = itertools.islice(delays(policy, rng=lambda: draw), 2)
    assert 0.08 <= first <= 0.12
    assert 0.16 <= second <= 0.24
    assert second > first


def test_jitter_never_exceeds_max_delay() -> None:
    policy = RetryPolicy(initial_delay=1.0, multiplier=2.0, max_delay=1.0, jitter=0.5)
    assert max(itertools.islice(delays(policy, rng=lambda: 0.999), 10)) <= 1.0


def test_budget_keeps_retries_to_a_share_of_requests() -> None:
    bucket = RetryBudgetBucket(RetryBudget(ratio=0.1, reserve=5))
    retries = 0
    for _ in range(1000):  # an outage: every request wants every retry
        bucket.on_request()
        for _ in range(3):
            if bucket.try_spend():
                retries += 1
    assert retries <= 5 + 0.1 * 1000
    assert retries >= 0.1 * 1000 - 1  # the share is still available


@pytest.mark.parametrize(
    ("error", "counts"),
    [
        (errors.Unavailable("x"), True),
        (errors.DeadlineExceeded("x"), True),
        (errors.Internal("x"), True),
        (errors.NotFound("x"), False),
        (errors.InvalidArgument("x"), False),
        (errors.FailedPrecondition("x"), False),
        (errors.PermissionDenied("x"), False),
    ],
)
def test_only_service_trouble_counts_against_a_service(
    error: errors.ServiceError, counts: bool
) -> None:
    assert counts_as_failure(error) is counts
