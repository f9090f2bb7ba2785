"""The mesh's circuit breakers and retries as a scraper sees them on /metrics."""

from __future__ import annotations

import re

import aiohttp
import pytest

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.breaker import CircuitOpen
from ec_recommend.platform.rpc.mesh import BreakerPolicy
from ec_recommend.platform.telemetry.endpoint import MetricsEndpoint, serve_metrics
from tests.conftest import wait_for
from tests.integration.mesh.faulty import faulty_product, mesh

pytestmark = pytest.mark.asyncio

GET = pb.GetProductRequest(product_id="p1")


async def scrape(endpoint: MetricsEndpoint) -> str:
    async with aiohttp.ClientSession() as session, session.get(endpoint.url) as response:
        assert response.status == 200
        return await response.text()


def breaker(text: str, state: str) -> float | None:
    match = re.search(
        rf'^circuit_breaker_state\{{service="product",state="{state}"\}} (\S+)$', text, re.M
    )
    return float(match.group(1)) if match else None


def counter(text: str, name: str, **labels: str) -> float:
    rendered = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{name}\{{{re.escape(rendered)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_circuit_breaker_state_follows_the_breaker() -> None:
    policy = mesh(retry={"max_retries": 0}, breaker=BreakerPolicy(threshold=3, timeout=0.3))
    async with faulty_product(policy) as (service, stub, _), serve_metrics() as endpoint:
        await stub.get_product(GET)
        text = await scrape(endpoint)
        assert (breaker(text, "closed"), breaker(text, "open")) == (1.0, 0.0)

        service.scripts["GetProduct"].always = errors.Internal("broken")
        for _ in range(3):
            with pytest.raises(errors.Internal):
                await stub.get_product(GET)
        with pytest.raises(CircuitOpen):
            await stub.get_product(GET)
        text = await scrape(endpoint)
        assert (breaker(text, "closed"), breaker(text, "open")) == (0.0, 1.0)
        assert breaker(text, "half_open") == 0.0

        service.scripts["GetProduct"].always = None

        async def closed_again() -> bool:
            try:
                await stub.get_product(GET)
            except CircuitOpen:
                return False
            return breaker(await scrape(endpoint), "closed") == 1.0

        await wait_for(closed_again, timeout=5)


async def test_retries_are_counted() -> None:
    policy = mesh(retry={"max_retries": 2})
    async with faulty_product(policy) as (service, stub, _), serve_metrics() as endpoint:
        before = counter(
            await scrape(endpoint),
            "grpc_client_retries_total",
            service="product",
            method="GetProduct",
        )
        service.scripts["GetProduct"].failures = [
            errors.Unavailable("blip"),
            errors.Unavailable("blip"),
        ]
        await stub.get_product(GET)
        after = counter(
            await scrape(endpoint),
            "grpc_client_retries_total",
            service="product",
            method="GetProduct",
        )
        assert after - before == 2
