"""``/metrics`` on its own port, for service and worker processes.

The gateway serves ``/metrics`` on its own HTTP port; a process without one
(gRPC services, consumers) opens this small aiohttp server instead. It also
answers ``/healthz``: ``serve`` opens it only once the process's services
listen, and closes it first on shutdown, so orchestrators (Kubernetes probes,
the image's HEALTHCHECK) can use it as the process's readiness too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from ec_recommend.platform.telemetry.http import metrics_handler
from ec_recommend.platform.telemetry.metrics import Metrics


@dataclass(frozen=True)
class MetricsEndpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@asynccontextmanager
async def serve_metrics(
    host: str = "127.0.0.1", port: int = 0, metrics: Metrics | None = None
) -> AsyncIterator[MetricsEndpoint]:
    """Serve ``/metrics`` on ``host:port`` (0 = any free port) until the block ends."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(metrics))
    app.router.add_get("/healthz", _healthz)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        yield MetricsEndpoint(host, int(runner.addresses[0][1]))
    finally:
        await runner.cleanup()
