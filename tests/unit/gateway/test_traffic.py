"""Request rate and p99 from two samples of the cumulative latency histogram."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ec_recommend.edge.gateway.traffic import Sample, between, sample_of

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
INF = float("inf")


def test_rate_and_p99_come_from_what_happened_between_the_samples() -> None:
    before = Sample(T0, 100, ((0.01, 90), (0.1, 100), (1.0, 100), (INF, 100)))
    # 200 more requests in 2 s: 190 under 10 ms, 8 under 100 ms, 2 under 1 s.
    after = Sample(
        T0 + timedelta(seconds=2), 300, ((0.01, 280), (0.1, 288), (1.0, 300), (INF, 300))
    )
    point = between(before, after)
    assert point.requests_per_second == pytest.approx(100.0)
    assert point.p99_seconds == 1.0  # 198 of 200 by 0.1 s is 99.0 %; the bucket that has 99 %
    assert point.as_json()["p99_ms"] == 1000.0


def test_a_quiet_interval_has_no_p99() -> None:
    same = ((0.01, 5), (INF, 5))
    point = between(Sample(T0, 5, same), Sample(T0 + timedelta(seconds=2), 5, same))
    assert (point.requests_per_second, point.p99_seconds) == (0.0, None)


def test_only_api_routes_of_the_gateway_count_and_never_the_console_itself() -> None:
    def histogram(count: float) -> dict[object, float]:
        return {0.01: count, INF: count, "count": count, "sum": 0.0}

    sample = sample_of(
        [
            ({"service": "gateway", "endpoint": "/api/v1/products"}, histogram(3)),
            ({"service": "gateway", "endpoint": "/auth/login"}, histogram(2)),
            ({"service": "gateway", "endpoint": "/api/v1/admin/overview"}, histogram(50)),
            ({"service": "gateway", "endpoint": "/static/{name}"}, histogram(7)),
            ({"service": "gateway", "endpoint": "/metrics"}, histogram(9)),
        ]
    )
    assert sample.count == 5
    assert dict(sample.buckets) == {0.01: 5, INF: 5}
