"""A service stops under load: calls fail fast, the circuit opens, then traffic recovers."""

from __future__ import annotations

import asyncio
import time

import pytest

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import Endpoint
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.breaker import CircuitOpen
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.mesh import BreakerPolicy
from ec_recommend.platform.rpc.server import RpcServer
from tests.conftest import wait_for
from tests.integration.mesh.faulty import FaultyProducts, mesh

pytestmark = pytest.mark.asyncio

GET = pb.GetProductRequest(product_id="p1")


async def test_outage_under_load_opens_the_circuit_and_recovers_without_a_new_client() -> None:
    policy = mesh(breaker=BreakerPolicy(threshold=5, timeout=0.3))
    server = RpcServer("product", [FaultyProducts()], drain_timeout=0.5)
    await server.__aenter__()
    port = server.port
    outcomes: list[tuple[object, float]] = []
    running = True
    async with ClientFactory(
        {"product": [Endpoint("127.0.0.1", port)]}, pool_size=1, mesh=policy
    ) as clients:
        stub = clients.stub(pb.ProductServiceStub, "product")

        async def load() -> None:
            while running:
                started = time.monotonic()
                try:
                    result: object = await stub.get_product(GET)
                except errors.ServiceError as exc:
                    result = exc
                outcomes.append((result, time.monotonic() - started))
                await asyncio.sleep(0.005)

        workers = [asyncio.create_task(load()) for _ in range(10)]
        await wait_for(lambda: len(outcomes) >= 50, timeout=10)

        await server.__aexit__(None, None, None)  # the product service goes away
        await wait_for(lambda: clients.open_circuits() == ["product"], timeout=10)
        await wait_for(lambda: isinstance(outcomes[-1][0], CircuitOpen), timeout=10)

        revived = FaultyProducts()
        async with RpcServer("product", [revived], port=port, drain_timeout=0.5):
            await wait_for(lambda: len(revived.calls["GetProduct"]) >= 20, timeout=10)
            assert clients.health_report()["product"]["circuit"] == "closed"
            running = False
            await asyncio.gather(*workers)

    assert all(isinstance(r, (pb.Product, errors.Unavailable)) for r, _ in outcomes), {
        type(r).__name__ for r, _ in outcomes
    }
    assert max(seconds for _, seconds in outcomes) < 2.0  # nothing hangs
    assert isinstance(outcomes[-1][0], pb.Product)
