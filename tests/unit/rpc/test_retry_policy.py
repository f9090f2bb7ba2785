"""Backoff schedule, retry budget and which errors count against a service."""

from __future__ import annotations

import pytest

from ec_recommend.platform import errors
from ec_recommend.platform.rpc.mesh import RetryBudget
from ec_recommend.platform.rpc.retry import RetryBudgetBucket, counts_as_failure


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
