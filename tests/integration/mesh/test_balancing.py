"""Round robin over several endpoints; a dead one is ejected, then probed back."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import Endpoint
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.server import RpcServer
from tests.conftest import wait_for
from tests.integration.mesh.faulty import FaultyProducts, mesh

pytestmark = pytest.mark.asyncio

GET = pb.GetProductRequest(product_id="p1")


async def _replicas(
    stack: AsyncExitStack, services: list[FaultyProducts]
) -> tuple[list[RpcServer], ClientFactory]:
    """A product server per service, and a client factory balancing over them."""
    servers = [
        await stack.enter_async_context(RpcServer("product", [s], drain_timeout=0.5))
        for s in services
    ]
    endpoints = [Endpoint("127.0.0.1", server.port) for server in servers]
    clients = await stack.enter_async_context(
        ClientFactory({"product": endpoints}, pool_size=1, mesh=mesh())
    )
    return servers, clients


async def test_calls_spread_over_endpoints_and_a_dead_one_is_ejected_then_recovered() -> None:
    services = [FaultyProducts() for _ in range(3)]
    async with AsyncExitStack() as stack:
        servers, clients = await _replicas(stack, services)
        endpoints = [Endpoint("127.0.0.1", server.port) for server in servers]
        stub = clients.stub(pb.ProductServiceStub, "product")

        for _ in range(30):
            await stub.get_product(GET)
        assert [len(s.calls["GetProduct"]) for s in services] == [10, 10, 10]

        # endpoint 0 goes away; reads keep succeeding (retried on the others)
        await servers[0].__aexit__(None, None, None)
        for _ in range(30):
            assert (await stub.get_product(GET)).name == "ok"
        health = clients.health_report()["product"]["endpoints"]
        assert [e["healthy"] for e in health] == [False, True, True]
        before = [len(s.calls["GetProduct"]) for s in services[1:]]
        for _ in range(10):
            await stub.get_product(GET)
        after = [len(s.calls["GetProduct"]) for s in services[1:]]
        assert sum(after) - sum(before) == 10  # none went to the dead endpoint's turn

        # it comes back on the same port: the health probe returns it to rotation
        revived = FaultyProducts()
        await stack.enter_async_context(
            RpcServer("product", [revived], port=endpoints[0].port, drain_timeout=0.5)
        )

        async def back_in_rotation() -> bool:
            await stub.get_product(GET)  # picking endpoints is what schedules probes
            return bool(clients.health_report()["product"]["endpoints"][0]["healthy"])

        await wait_for(back_in_rotation, timeout=10)
        for _ in range(9):
            await stub.get_product(GET)
        assert len(revived.calls["GetProduct"]) >= 3


async def test_a_stub_made_per_request_still_alternates_between_two_endpoints() -> None:
    """As the gateway does: building the stub must not take the call's turn."""
    services = [FaultyProducts() for _ in range(2)]
    async with AsyncExitStack() as stack:
        _, clients = await _replicas(stack, services)
        for _ in range(10):
            await clients.stub(pb.ProductServiceStub, "product").get_product(GET)
        assert [len(s.calls["GetProduct"]) for s in services] == [5, 5]
