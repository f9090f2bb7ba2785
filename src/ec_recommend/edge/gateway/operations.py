"""What the operator console reads, gathered from this gateway process.

Health, circuit breakers, outboxes and rate-limit rejections come from the
process's own metrics and clients: under ``ec-recommend up`` that is the
whole system (every service, relay and consumer runs in the process); a
gateway started alone with ``serve gateway`` reports its own breakers and
limits and the health of the services it can reach. Queue depths come from
SQS itself, so they are right wherever the gateway runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ec_recommend.config import Config
from ec_recommend.edge.gateway.health import is_serving
from ec_recommend.edge.gateway.keys import Gateway
from ec_recommend.edge.gateway.queues import QueueConsole, open_queue_console
from ec_recommend.edge.gateway.traffic import TrafficHistory, sampled_traffic
from ec_recommend.platform.events.topology import load_topology
from ec_recommend.platform.telemetry.metrics import Metrics, process_metrics

TIERS = ("anonymous", "authenticated", "seller")


@dataclass(frozen=True)
class Operations:
    metrics: Metrics
    traffic: TrafficHistory
    queues: QueueConsole | None  # None: events are off in this gateway

    async def overview(self, gateway: Gateway) -> dict[str, Any]:
        names = list(gateway.services)
        serving = await asyncio.gather(*(is_serving(gateway.clients, n) for n in names))
        return {
            "services": [
                {"name": name, "serving": ok} for name, ok in zip(names, serving, strict=True)
            ],
            "circuit_breakers": self._breakers(),
            "outboxes": self._outboxes(),
            "rate_limit_rejections": self._rejections(),
            "traffic": [point.as_json() for point in self.traffic.points()],
        }

    def _breakers(self) -> list[dict[str, str]]:
        states = self.metrics.breaker_states()
        return [{"service": s, "state": states[s]} for s in sorted(states)]

    def _outboxes(self) -> list[dict[str, Any]]:
        return [
            {"service": service, "backlog": backlog, "oldest_unsent_age_seconds": round(age, 3)}
            for service, (backlog, age) in sorted(self.metrics.outbox_states().items())
        ]

    def _rejections(self) -> list[dict[str, Any]]:
        counts = self.metrics.rate_limit_rejections()
        return [{"tier": tier, "count": counts.get(tier, 0)} for tier in TIERS]


OPERATIONS = web.AppKey("ec_operations", Operations)


@asynccontextmanager
async def open_operations(config: Config) -> AsyncIterator[Operations]:
    metrics = process_metrics()
    async with AsyncExitStack() as stack:
        traffic = await stack.enter_async_context(sampled_traffic(metrics))
        queues = None
        if config.events.enabled:
            topology = load_topology(config.events.topology_path)
            queues = await stack.enter_async_context(open_queue_console(config.events, topology))
        yield Operations(metrics, traffic, queues)
