"""Recent request rate and p99 latency of this gateway process, for the operator console.

Prometheus answers these with ``rate()`` and ``histogram_quantile()``; an
operator without one still gets the last minutes from the process's own
counters: a sample of the cumulative latency histogram every ``interval``
seconds, and per interval the requests per second and the p99 (the upper
bound of the bucket the 99th percentile falls in, as Prometheus reports it
without interpolation). The console's own polling is left out, so it does not
measure itself.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.telemetry.metrics import Metrics

COUNTED_PREFIXES = ("/api/", "/auth/")
ADMIN_PREFIX = "/api/v1/admin"


@dataclass(frozen=True)
class Sample:
    """Cumulative counts at one moment: ``buckets`` pairs upper bounds with counts."""

    at: datetime
    count: float
    buckets: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class TrafficPoint:
    at: datetime
    requests_per_second: float
    p99_seconds: float | None  # None: no requests in the interval

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "requests_per_second": round(self.requests_per_second, 3),
            "p99_ms": None if self.p99_seconds is None else round(self.p99_seconds * 1000, 3),
        }


def sample_of(histograms: Iterable[tuple[Mapping[str, str], Mapping[Any, float]]]) -> Sample:
    """Sum the gateway's per-route histograms (aioprometheus ``get_all()``) into one."""
    count = 0.0
    buckets: dict[float, float] = {}
    for labels, values in histograms:
        endpoint = labels.get("endpoint", "")
        if labels.get("service") != "gateway" or not endpoint.startswith(COUNTED_PREFIXES):
            continue
        if endpoint.startswith(ADMIN_PREFIX):
            continue
        count += values.get("count", 0)
        for bound, value in values.items():
            if isinstance(bound, float):
                buckets[bound] = buckets.get(bound, 0) + value
    return Sample(utcnow(), count, tuple(sorted(buckets.items())))


def between(before: Sample, after: Sample) -> TrafficPoint:
    """What happened from ``before`` to ``after``."""
    seconds = max((after.at - before.at).total_seconds(), 1e-9)
    requests = max(after.count - before.count, 0.0)
    p99 = None
    if requests > 0:
        earlier = dict(before.buckets)
        target = requests * 0.99
        for bound, cumulative in after.buckets:
            if cumulative - earlier.get(bound, 0.0) >= target:
                p99 = bound
                break
    return TrafficPoint(after.at, requests / seconds, p99)


class TrafficHistory:
    """The last ``keep`` samples; ``points()`` are the intervals between them."""

    def __init__(self, metrics: Metrics, keep: int) -> None:
        self._metrics = metrics
        self._samples: deque[Sample] = deque(maxlen=keep)

    def take(self) -> None:
        self._samples.append(sample_of(self._metrics.http_latency_histograms()))

    def points(self) -> list[TrafficPoint]:
        return [between(a, b) for a, b in pairwise(self._samples)]


@asynccontextmanager
async def sampled_traffic(
    metrics: Metrics, *, interval: float = 2.0, window: float = 300.0
) -> AsyncIterator[TrafficHistory]:
    """A history sampled every ``interval`` seconds over the last ``window``."""
    history = TrafficHistory(metrics, keep=int(window / interval) + 1)
    history.take()

    async def sample_forever() -> None:
        while True:
            await asyncio.sleep(interval)
            history.take()

    task = asyncio.create_task(sample_forever(), name="traffic-sampler")
    try:
        yield history
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
