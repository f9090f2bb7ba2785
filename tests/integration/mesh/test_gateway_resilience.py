"""What a REST client sees when a service behind the gateway hangs or goes away."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ec_recommend.config import Config, Endpoint, GatewayConfig
from ec_recommend.edge.gateway.app import GatewaySetup, create_app
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.mesh import BreakerPolicy, MeshConfig
from ec_recommend.platform.rpc.server import RpcServer
from tests.conftest import wait_for
from tests.integration.consumers.conftest import no_tokens
from tests.integration.mesh.faulty import FaultyProducts, mesh

pytestmark = pytest.mark.asyncio

PRODUCT_PATH = f"/api/v1/products/{uuid.uuid4()}"
CONFIG = Config(gateway=replace(GatewayConfig(), rate_limit_anonymous=100_000))


@asynccontextmanager
async def gateway(port: int, policy: MeshConfig) -> AsyncIterator[TestClient[Any, Any]]:
    async with ClientFactory(
        {"product": [Endpoint("127.0.0.1", port)]}, pool_size=1, mesh=policy
    ) as clients:
        setup = GatewaySetup(
            config=CONFIG, verifier=no_tokens, clients=clients, services=["product"]
        )
        async with TestClient(TestServer(create_app(setup))) as http:
            yield http


async def test_a_one_second_budget_on_a_hanging_service_answers_504_and_cancels_it() -> None:
    service = FaultyProducts()
    service.scripts["GetProduct"].hang_forever = True
    async with (
        RpcServer("product", [service]) as server,
        gateway(server.port, mesh(timeout=30.0)) as http,
    ):
        started = time.monotonic()
        response = await http.get(PRODUCT_PATH, headers={"X-Request-Timeout": "1"})
        elapsed = time.monotonic() - started
        assert response.status == 504
        assert (await response.json())["code"] == "TIMEOUT"
        assert 0.9 <= elapsed < 3.0, elapsed  # the budget, not the service's 30 s timeout
        # The deadline reached the service: its handler stopped working.
        await wait_for(lambda: service.cancelled["GetProduct"] >= 1, timeout=5)

        bad = await http.get(PRODUCT_PATH, headers={"X-Request-Timeout": "soon"})
        assert bad.status == 400
        assert (await bad.json())["details"]["field"] == "X-Request-Timeout"


async def test_product_service_outage_under_load_gives_503_and_recovers() -> None:
    policy = mesh(breaker=BreakerPolicy(threshold=5, timeout=0.3))
    server = RpcServer("product", [FaultyProducts()], drain_timeout=0.5)
    await server.__aenter__()
    port = server.port
    outcomes: list[tuple[int, str, float]] = []
    running = True
    async with gateway(port, policy) as http:

        async def load() -> None:
            while running:
                started = time.monotonic()
                response = await http.get(PRODUCT_PATH)
                body = await response.json()
                outcomes.append((response.status, body.get("code", ""), time.monotonic() - started))

        workers = [asyncio.create_task(load()) for _ in range(8)]
        await wait_for(lambda: len(outcomes) >= 40, timeout=10)
        assert (await http.get("/readyz")).status == 200

        await server.__aexit__(None, None, None)  # the product service goes away
        stopped_at = len(outcomes)
        await wait_for(lambda: outcomes[-1][:2] == (503, "SERVICE_UNAVAILABLE"), timeout=10)
        # the product routes are degraded, the gateway is not: it stays ready
        await wait_for(lambda: _lists(http, "open_circuits", "product"), timeout=10)
        readyz = await http.get("/readyz")
        assert readyz.status == 200
        assert "product" in (await readyz.json())["down_services"]

        async with RpcServer("product", [FaultyProducts()], port=port, drain_timeout=0.5):
            await wait_for(lambda: outcomes[-1][0] == 200, timeout=10)
            await wait_for(lambda: _lists_none(http), timeout=10)
            running = False
            await asyncio.gather(*workers)

    during = outcomes[stopped_at:]
    assert {status for status, _, _ in during} <= {200, 503}, during
    assert max(seconds for _, _, seconds in outcomes) < 2.0  # nothing hangs


async def _lists(http: TestClient[Any, Any], key: str, service: str) -> bool:
    response = await http.get("/readyz")
    return response.status == 200 and service in (await response.json())[key]


async def _lists_none(http: TestClient[Any, Any]) -> bool:
    body = await (await http.get("/readyz")).json()
    return body["open_circuits"] == [] and body["down_services"] == []


async def test_one_open_circuit_degrades_its_routes_not_readiness() -> None:
    policy = mesh(retry={"max_retries": 0}, breaker=BreakerPolicy(threshold=2, timeout=30.0))
    service = FaultyProducts()
    service.scripts["GetProduct"].always = errors.Internal("broken")
    async with RpcServer("product", [service]) as server, gateway(server.port, policy) as http:
        for _ in range(2):
            assert (await http.get(PRODUCT_PATH)).status == 500
        refused = await http.get(PRODUCT_PATH)
        assert refused.status == 503
        assert (await refused.json())["code"] == "SERVICE_UNAVAILABLE"
        # the circuit lets a trial through in about 30 s: say so
        assert 1 <= int(refused.headers["Retry-After"]) <= 30

        readyz = await http.get("/readyz")
        assert readyz.status == 200
        body = await readyz.json()
        assert body["status"] == "ready"
        assert body["open_circuits"] == ["product"]
        assert body["down_services"] == []  # it answers its health check
