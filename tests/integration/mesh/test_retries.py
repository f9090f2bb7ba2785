"""Retries over real gRPC: only retryable statuses, only idempotent calls, bounded."""

from __future__ import annotations

import itertools

import pytest

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import Endpoint
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.context import CallContext, call_scope
from ec_recommend.platform.rpc.mesh import RetryBudget
from ec_recommend.platform.rpc.server import RpcServer
from ec_recommend.runtime.local_aws import free_port
from tests.integration.mesh.faulty import FaultyProducts, faulty_product, mesh

pytestmark = pytest.mark.asyncio

GET = pb.GetProductRequest(product_id="p1")


async def test_idempotent_read_is_retried_until_it_succeeds() -> None:
    async with faulty_product(mesh()) as (service, stub, _):
        service.scripts["GetProduct"].failures = [errors.Unavailable("down"), errors.Internal("x")]
        product = await stub.get_product(GET)
    assert product.name == "ok"
    assert len(service.calls["GetProduct"]) == 3


async def test_retries_stop_at_max_retries() -> None:
    async with faulty_product(mesh(retry={"max_retries": 2})) as (service, stub, _):
        service.scripts["GetProduct"].always = errors.Unavailable("down")
        with pytest.raises(errors.Unavailable):
            await stub.get_product(GET)
    assert len(service.calls["GetProduct"]) == 3  # one try + two retries


@pytest.mark.parametrize(
    "error",
    [
        errors.InvalidArgument("bad", field="product_id"),
        errors.NotFound("none"),
        errors.AlreadyExists("dup"),
        errors.FailedPrecondition("rule", reason="insufficient_stock"),
        errors.Aborted("conflict"),
        errors.PermissionDenied("no"),
        errors.Unauthenticated("who"),
        errors.ResourceExhausted("slow down"),
        errors.DeadlineExceeded("late"),  # from the server: not in retry_on below
        errors.Internal("bug"),  # not in retry_on below
    ],
    ids=lambda e: e.code,
)
async def test_statuses_outside_retry_on_are_not_retried(error: errors.ServiceError) -> None:
    policy = mesh(retry={"retry_on": frozenset({"UNAVAILABLE"})})
    async with faulty_product(policy) as (service, stub, _):
        service.scripts["GetProduct"].always = error
        with pytest.raises(type(error)) as caught:
            await stub.get_product(GET)
    assert caught.value.details == error.details
    assert len(service.calls["GetProduct"]) == 1


async def test_a_non_idempotent_call_is_never_retried_once_sent() -> None:
    async with faulty_product(mesh()) as (service, stub, _):
        service.scripts["CreateProduct"].always = errors.Unavailable("went away")
        with pytest.raises(errors.Unavailable):
            await stub.create_product(pb.CreateProductRequest(name="x"))
        assert len(service.calls["CreateProduct"]) == 1

        # a hang that times out the try may have done the work: no retry either
        service.scripts["CreateProduct"] = type(service.scripts["CreateProduct"])()
        service.scripts["CreateProduct"].hang_forever = True
        with pytest.raises(errors.DeadlineExceeded):
            await stub.create_product(pb.CreateProductRequest(name="y"), timeout=0.3)
        assert len(service.calls["CreateProduct"]) == 2


async def test_a_write_with_an_idempotency_key_may_be_retried() -> None:
    policy = mesh(idempotent_with_key=frozenset({"CreateProduct"}))
    async with faulty_product(policy) as (service, stub, _):
        service.scripts["CreateProduct"].failures = [errors.Unavailable("blip")] * 2
        with pytest.raises(errors.Unavailable):
            await stub.create_product(pb.CreateProductRequest(name="no key"))
        with call_scope(CallContext(idempotency_key="k-1")):
            created = await stub.create_product(pb.CreateProductRequest(name="keyed"))
    assert created.name == "keyed"
    assert len(service.calls["CreateProduct"]) == 3  # unkeyed once; keyed failed, then retried


async def test_a_write_that_never_reached_a_server_is_retried_elsewhere() -> None:
    service = FaultyProducts()
    dead = Endpoint("127.0.0.1", free_port())  # nothing listens: connect is refused
    async with (
        RpcServer("product", [service]) as server,
        ClientFactory(
            {"product": [dead, Endpoint("127.0.0.1", server.port)]}, pool_size=1, mesh=mesh()
        ) as clients,
    ):
        stub = clients.stub(pb.ProductServiceStub, "product")
        names = [
            (await stub.create_product(pb.CreateProductRequest(name=f"n{i}"))).name
            for i in range(4)
        ]
    assert names == ["n0", "n1", "n2", "n3"]
    assert len(service.calls["CreateProduct"]) == 4  # each exactly once


async def test_backoff_between_tries_grows() -> None:
    policy = mesh(
        retry={"max_retries": 3, "initial_delay": 0.1, "multiplier": 3.0, "max_delay": 2.0}
    )
    async with faulty_product(policy) as (service, stub, _):
        service.scripts["GetProduct"].always = errors.Unavailable("down")
        with pytest.raises(errors.Unavailable):
            await stub.get_product(GET)
    times = service.calls["GetProduct"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 3
    assert gaps[0] >= 0.1
    assert gaps[0] < gaps[1] < gaps[2]


async def test_each_try_is_bounded_by_retry_timeout() -> None:
    policy = mesh(retry={"retry_timeout": 0.3})
    async with faulty_product(policy) as (service, stub, _):
        service.scripts["GetProduct"].failures = [None]  # the first try hangs
        product = await stub.get_product(GET)
    assert product.name == "ok"
    assert len(service.calls["GetProduct"]) == 2
    assert service.cancelled["GetProduct"] == 1  # the server gave up on the first try


async def test_retry_budget_caps_retries_during_an_outage() -> None:
    policy = mesh(budget=RetryBudget(ratio=0.1, reserve=3))
    async with faulty_product(policy) as (service, stub, _):
        service.scripts["GetProduct"].always = errors.Unavailable("outage")
        for _ in range(60):
            with pytest.raises(errors.Unavailable):
                await stub.get_product(GET)
    attempts = len(service.calls["GetProduct"])
    # without a budget: 60 * (1 + 3) = 240 attempts
    assert 60 < attempts <= 60 + 3 + 0.1 * 60 + 1


async def test_a_write_refused_by_a_draining_server_is_retried_elsewhere() -> None:
    draining, live = FaultyProducts(), FaultyProducts()
    async with (
        RpcServer("product", [draining]) as first,
        RpcServer("product", [live]) as second,
        ClientFactory(
            {"product": [Endpoint("127.0.0.1", s.port) for s in (first, second)]},
            pool_size=1,
            mesh=mesh(),
        ) as clients,
    ):
        stub = clients.stub(pb.ProductServiceStub, "product")
        for _ in range(2):  # open a connection to each
            await stub.get_product(GET)
        await first.drain()  # open connections now answer UNAVAILABLE (draining)
        for i in range(4):
            created = await stub.create_product(pb.CreateProductRequest(name=f"n{i}"))
            assert created.name == f"n{i}"
    assert len(draining.calls["CreateProduct"]) == 0
    assert len(live.calls["CreateProduct"]) == 4
