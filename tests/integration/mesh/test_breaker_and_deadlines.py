"""Circuit breaker and deadline propagation over real gRPC servers."""

from __future__ import annotations

import asyncio
import time

import pytest

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.config import Endpoint
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.breaker import BreakerState, CircuitOpen
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.mesh import BreakerPolicy, MeshConfig, ServicePolicy
from ec_recommend.platform.rpc.server import RpcServer
from tests.conftest import wait_for
from tests.integration.mesh.faulty import FaultyProducts, faulty_product, mesh

pytestmark = pytest.mark.asyncio

GET = pb.GetProductRequest(product_id="p1")


def breaker_mesh(threshold: int = 3, timeout: float = 0.3) -> MeshConfig:
    return mesh(retry={"max_retries": 0}, breaker=BreakerPolicy(threshold, timeout))


async def test_breaker_opens_fails_fast_half_opens_and_closes() -> None:
    async with faulty_product(breaker_mesh()) as (service, stub, clients):
        service.scripts["GetProduct"].always = errors.Internal("broken")
        for _ in range(3):
            with pytest.raises(errors.Internal):
                await stub.get_product(GET)
        assert clients.health_report()["product"]["circuit"] == "open"
        assert clients.open_circuits() == ["product"]

        started = time.monotonic()
        with pytest.raises(errors.Unavailable) as caught:
            await stub.get_product(GET)
        assert isinstance(caught.value, CircuitOpen)
        assert time.monotonic() - started < 0.1  # at once, without a network call
        assert len(service.calls["GetProduct"]) == 3  # nothing reached the service

        service.scripts["GetProduct"].always = None  # the service recovers

        async def trial_passes() -> bool:
            try:
                await stub.get_product(GET)
            except CircuitOpen:
                return False
            return True

        await wait_for(trial_passes, timeout=5)
        assert clients.health_report()["product"]["circuit"] == "closed"
        assert len(service.calls["GetProduct"]) == 4  # three failures, one trial


async def test_a_failed_trial_opens_the_circuit_again() -> None:
    async with faulty_product(breaker_mesh(threshold=1, timeout=0.2)) as (service, stub, clients):
        service.scripts["GetProduct"].always = errors.Unavailable("down")
        with pytest.raises(errors.Unavailable):
            await stub.get_product(GET)
        breaker = clients.invoker("product").breaker
        await wait_for(lambda: time.monotonic() >= breaker.reopens_at, timeout=5)
        with pytest.raises(errors.Unavailable) as caught:
            await stub.get_product(GET)  # the trial reaches the service and fails
        assert not isinstance(caught.value, CircuitOpen)
        assert breaker.state is BreakerState.OPEN
        assert len(service.calls["GetProduct"]) == 2


async def test_only_one_of_50_concurrent_callers_is_the_half_open_trial() -> None:
    async with faulty_product(breaker_mesh(threshold=2, timeout=0.2)) as (service, stub, clients):
        service.scripts["GetProduct"].always = errors.Internal("broken")
        for _ in range(2):
            with pytest.raises(errors.Internal):
                await stub.get_product(GET)
        breaker = clients.invoker("product").breaker
        await wait_for(lambda: time.monotonic() >= breaker.reopens_at, timeout=5)

        service.scripts["GetProduct"].always = None
        service.gate = asyncio.Event()  # hold the trial inside the service
        calls = [asyncio.create_task(stub.get_product(GET)) for _ in range(50)]
        await wait_for(lambda: len(service.calls["GetProduct"]) == 3, timeout=5)
        service.gate.set()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)

    passed = [o for o in outcomes if isinstance(o, pb.Product)]
    refused = [o for o in outcomes if isinstance(o, CircuitOpen)]
    assert (len(passed), len(refused)) == (1, 49)
    assert len(service.calls["GetProduct"]) == 3
    assert breaker.state is BreakerState.CLOSED


async def test_caller_errors_do_not_trip_the_breaker() -> None:
    async with faulty_product(breaker_mesh(threshold=2)) as (service, stub, clients):
        service.scripts["GetProduct"].always = errors.NotFound("no such product")
        for _ in range(5):
            with pytest.raises(errors.NotFound):
                await stub.get_product(GET)
        assert clients.health_report()["product"]["circuit"] == "closed"


class Frontend(pb_user.UserServiceBase):
    """Service A: answers GetUser by calling service B (product)."""

    def __init__(self, clients: ClientFactory) -> None:
        self.clients = clients

    async def get_user(self, message: pb_user.GetUserRequest) -> pb_user.User:
        stub = self.clients.stub(pb.ProductServiceStub, "product")
        product = await stub.get_product(pb.GetProductRequest(product_id=message.user_id))
        return pb_user.User(id=product.id)


async def test_deadline_propagates_across_two_hops_and_cancels_the_far_handler() -> None:
    backend = FaultyProducts()
    backend.scripts["GetProduct"].hang_forever = True
    # B's own timeout is long: only the caller's 1 s budget can end the call early
    slow_b = MeshConfig(
        defaults=ServicePolicy(name="*", timeout=30.0),
        services={"product": ServicePolicy(name="product", timeout=30.0)},
    )
    async with (
        RpcServer("product", [backend]) as b_server,
        ClientFactory(
            {"product": [Endpoint("127.0.0.1", b_server.port)]}, mesh=slow_b
        ) as a_clients,
        RpcServer("user", [Frontend(a_clients)]) as a_server,
        ClientFactory({"user": [Endpoint("127.0.0.1", a_server.port)]}, mesh=slow_b) as clients,
    ):
        users = clients.stub(pb_user.UserServiceStub, "user")
        started = time.monotonic()
        with pytest.raises(errors.DeadlineExceeded):
            await users.get_user(pb_user.GetUserRequest(user_id="p1"), timeout=1.0)
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed < 10.0  # the 1 s budget, far below B's 30 s timeout
        await wait_for(lambda: backend.cancelled["GetProduct"] == 1, timeout=5)
        assert len(backend.calls["GetProduct"]) == 1  # a timed-out read is not retried late


async def test_a_dependencys_open_circuit_does_not_open_the_callers() -> None:
    """A answers fast "my dependency's circuit is open": A itself is healthy."""
    backend = FaultyProducts()
    backend.scripts["GetProduct"].always = errors.Internal("broken")
    # A's two Internal answers stay one short of A's own threshold
    strict = MeshConfig(
        services={
            name: ServicePolicy(name=name, breaker=BreakerPolicy(threshold, timeout=30.0))
            for name, threshold in (("user", 3), ("product", 2))
        }
    )
    async with (
        RpcServer("product", [backend]) as b_server,
        ClientFactory(
            {"product": [Endpoint("127.0.0.1", b_server.port)]}, mesh=strict
        ) as a_clients,
        RpcServer("user", [Frontend(a_clients)]) as a_server,
        ClientFactory({"user": [Endpoint("127.0.0.1", a_server.port)]}, mesh=strict) as clients,
    ):
        users = clients.stub(pb_user.UserServiceStub, "user")
        for _ in range(2):
            with pytest.raises(errors.Internal):
                await users.get_user(pb_user.GetUserRequest(user_id="p1"))
        assert a_clients.open_circuits() == ["product"]
        for _ in range(4):
            with pytest.raises(errors.Unavailable) as caught:
                await users.get_user(pb_user.GetUserRequest(user_id="p1"))
            assert caught.value.details["reason"] == "circuit_open"
        report = clients.health_report()["user"]
        assert report["circuit"] == "closed", report
        assert all(endpoint["healthy"] for endpoint in report["endpoints"]), report
