"""``/healthz`` (the process answers) and ``/readyz`` (it can serve traffic).

Ready means the gateway can serve: the owner marked it ready (``up`` does so
once demo data and endpoints.json are in place). A service whose circuit is
open, or that does not answer the standard gRPC health check as SERVING,
degrades only its own routes (they answer 503), so it is listed in the body
as information and never fails readiness: a load balancer must not pull a
gateway that still serves every other route.

``{"status": "ready", "services": [...], "open_circuits": [...],
"down_services": [...]}``

Where the process owns a local broker (``up``), every body also says
``"broker": "up"`` or ``"down"``. A broker that is down does not make the
gateway unready: writes still commit, their events wait in the outbox.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from aiohttp import web
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from ec_recommend.edge.gateway.keys import GATEWAY
from ec_recommend.platform.rpc.client import ClientFactory

CHECK_TIMEOUT = 2.0
# The state of the local broker ("up"/"down"), when this process owns one.
BROKER_STATE: web.AppKey[Callable[[], str]] = web.AppKey("ec_broker_state")


async def is_serving(clients: ClientFactory, service: str) -> bool:
    try:
        channel = clients.invoker(service).pool.pick()
        response = await HealthStub(channel).Check(HealthCheckRequest(), timeout=CHECK_TIMEOUT)
    except Exception:
        # any failure to answer means "not ready", never a 500 from a probe
        return False
    return bool(response is not None and response.status == HealthCheckResponse.SERVING)


async def healthz(request: web.Request) -> web.Response:
    # The pid tells gateway processes sharing a port apart (``--workers``).
    return web.json_response({"status": "ok", "pid": os.getpid()})


def _with_broker(request: web.Request, body: dict[str, object]) -> dict[str, object]:
    state = request.app.get(BROKER_STATE)
    return body if state is None else {**body, "broker": state()}


async def readyz(request: web.Request) -> web.Response:
    gateway = request.app.get(GATEWAY)
    if gateway is None or not gateway.ready:
        return web.json_response(
            _with_broker(request, {"code": "SERVICE_UNAVAILABLE", "message": "starting"}),
            status=503,
        )
    names = list(gateway.services)
    results = await asyncio.gather(*(is_serving(gateway.clients, name) for name in names))
    return web.json_response(
        _with_broker(
            request,
            {
                "status": "ready",
                "services": names,
                "open_circuits": sorted(gateway.clients.open_circuits()),
                "down_services": sorted(n for n, ok in zip(names, results, strict=True) if not ok),
            },
        )
    )


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
