"""Whose deadline ran out: the caller's budget says nothing about the service.

Over real gRPC: a caller's short deadline (travelled in, or an explicit
timeout) never trips the breaker, ejects the endpoint or spends the half-open
trial; the mesh's own timeout still does. A try that cannot be retried is not
cut short by ``retry_timeout``.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from grpclib.metadata import Deadline

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.breaker import BreakerState, CircuitOpen
from ec_recommend.platform.rpc.context import CallContext, call_scope
from ec_recommend.platform.rpc.mesh import BreakerPolicy, OutlierPolicy
from tests.conftest import wait_for
from tests.integration.mesh.faulty import faulty_product, mesh

pytestmark = pytest.mark.asyncio

GET = pb.GetProductRequest(product_id="p1")


def callers_deadline(seconds: float) -> CallContext:
    """The current call as a server sees it when its caller allowed ``seconds``."""
    return CallContext(deadline=Deadline.from_timeout(seconds))


async def test_a_callers_short_deadline_never_trips_the_breaker_or_ejects() -> None:
    policy = mesh(
        breaker=BreakerPolicy(threshold=2, timeout=30.0),
        outlier=OutlierPolicy(consecutive_failures=2, ejection_time=30.0, probe_timeout=0.5),
    )
    async with faulty_product(policy) as (service, stub, clients):
        service.scripts["GetProduct"].hang_forever = True
        for seconds in (0.001, 0.01, 0.05, 0.1, 0.01, 0.05):
            with call_scope(callers_deadline(seconds)), pytest.raises(errors.DeadlineExceeded):
                await stub.get_product(GET)
            with pytest.raises(errors.DeadlineExceeded):
                await stub.get_product(GET, timeout=seconds)  # an explicit timeout is the caller's
        report = clients.health_report()["product"]
        assert report["circuit"] == "closed"
        assert all(endpoint["healthy"] for endpoint in report["endpoints"]), report
        # no time left for another try: a caller's timeout is never retried
        assert len(service.calls["GetProduct"]) <= 12

        service.scripts["GetProduct"].hang_forever = False
        assert (await stub.get_product(GET)).name == "ok"


async def test_the_mesh_timeout_still_opens_the_breaker() -> None:
    policy = mesh(
        timeout=0.2, retry={"max_retries": 0}, breaker=BreakerPolicy(threshold=2, timeout=30.0)
    )
    async with faulty_product(policy) as (service, stub, clients):
        service.scripts["GetProduct"].hang_forever = True
        for _ in range(2):
            # the caller would wait 10 s: the service's own 0.2 s ran out first
            with call_scope(callers_deadline(10.0)), pytest.raises(errors.DeadlineExceeded):
                await stub.get_product(GET)
        assert clients.open_circuits() == ["product"]
        with pytest.raises(CircuitOpen):
            await stub.get_product(GET)


async def test_retry_timeout_still_counts_against_the_service() -> None:
    policy = mesh(
        retry={"max_retries": 1, "retry_timeout": 0.1},
        breaker=BreakerPolicy(threshold=2, timeout=30.0),
    )
    async with faulty_product(policy) as (service, stub, clients):
        service.scripts["GetProduct"].hang_forever = True
        with call_scope(callers_deadline(10.0)), pytest.raises(errors.DeadlineExceeded):
            await stub.get_product(GET)  # two tries, each ended by the mesh's 0.1 s
        assert clients.open_circuits() == ["product"]


async def test_a_half_open_trial_cut_short_by_its_caller_is_no_verdict() -> None:
    policy = mesh(retry={"max_retries": 0}, breaker=BreakerPolicy(threshold=1, timeout=0.2))
    async with faulty_product(policy) as (service, stub, clients):
        service.scripts["GetProduct"].always = errors.Internal("broken")
        with pytest.raises(errors.Internal):
            await stub.get_product(GET)
        breaker = clients.invoker("product").breaker
        await wait_for(lambda: time.monotonic() >= breaker.reopens_at, timeout=5)

        service.scripts["GetProduct"].always = None
        service.scripts["GetProduct"].hang_forever = True
        with call_scope(callers_deadline(0.05)), pytest.raises(errors.DeadlineExceeded) as caught:
            await stub.get_product(GET)  # admitted as the trial, then its caller gave up
        assert not isinstance(caught.value, CircuitOpen)
        assert breaker.state is BreakerState.HALF_OPEN

        service.scripts["GetProduct"].hang_forever = False
        assert (await stub.get_product(GET)).name == "ok"  # the next caller is the trial
        assert breaker.state is BreakerState.CLOSED


async def test_a_write_that_cannot_be_retried_gets_the_whole_timeout() -> None:
    policy = mesh(timeout=10.0, retry={"retry_timeout": 0.2})
    async with faulty_product(policy) as (service, stub, _):
        service.gate = asyncio.Event()
        call = asyncio.create_task(stub.create_product(pb.CreateProductRequest(name="slow")))
        await wait_for(lambda: len(service.calls["CreateProduct"]) == 1, timeout=5)
        # longer than retry_timeout, well inside the 10 s timeout: the fault under test
        await asyncio.sleep(0.5)
        service.gate.set()
        created = await call
    assert created.name == "slow"
    assert service.cancelled["CreateProduct"] == 0
