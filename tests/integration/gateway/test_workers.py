"""``--workers``: gateway processes on one port, sharing cache invalidations.

The parent here is the test process (its gateway and the services it hosts);
one worker process dials those services over gRPC. Connections are opened
afresh for each request so SO_REUSEPORT spreads them over both processes.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import CacheConfig
from ec_recommend.edge.gateway.app import create_app, serving
from ec_recommend.edge.gateway.keys import PRODUCT_CACHE
from ec_recommend.edge.gateway.workers import GatewayWorkers, per_process_limits, worker_spec
from ec_recommend.platform.cache import LocalProductCache
from ec_recommend.runtime.host import host_services
from tests.conftest import wait_for
from tests.integration.gateway.conftest import gateway_config
from tests.integration.gateway.workers_support import static_setup

pytestmark = pytest.mark.asyncio

SETUP = "tests.integration.gateway.workers_support:static_setup"
TRIES = 40  # fresh connections: all on one process with probability 2**-39


@dataclass
class Edge:
    url: str
    workers: GatewayWorkers
    cache: LocalProductCache
    products: pb.ProductServiceStub


@asynccontextmanager
async def two_processes(tmp_path: Path) -> AsyncIterator[Edge]:
    # a long TTL: only an invalidation makes a change visible within a test
    config = replace(gateway_config(tmp_path), cache=CacheConfig(ttl=600))
    config = per_process_limits(config, 2)
    services = ("user", "product")
    async with host_services(config, services) as hosted:
        app = create_app(replace(static_setup(config, services), clients=hosted.clients))
        async with serving(app, "127.0.0.1", 0, reuse_port=True) as url:
            cache = app[PRODUCT_CACHE]
            assert isinstance(cache, LocalProductCache)
            spec = worker_spec(
                config,
                port=int(url.rsplit(":", 1)[1]),
                endpoints=hosted.endpoints(),
                services=services,
                setup=SETUP,
            )
            async with GatewayWorkers(spec, 1, cache) as workers:
                products = hosted.clients.stub(pb.ProductServiceStub, "product")
                yield Edge(url, workers, cache, products)
            assert all(w.process and w.process.returncode is not None for w in workers._workers)


async def _fresh_get(url: str) -> Any:
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def _names(edge: Edge, product_id: str) -> set[str]:
    return {
        (await _fresh_get(f"{edge.url}/api/v1/products/{product_id}"))["name"] for _ in range(TRIES)
    }


async def test_requests_land_on_both_processes(tmp_path: Path) -> None:
    async with two_processes(tmp_path) as edge:
        pids = {(await _fresh_get(f"{edge.url}/healthz"))["pid"] for _ in range(TRIES)}
        assert pids == {os.getpid(), *edge.workers.pids}
        assert len(pids) == 2


async def test_an_invalidation_reaches_every_process(tmp_path: Path) -> None:
    async with two_processes(tmp_path) as edge:
        product = await edge.products.create_product(
            pb.CreateProductRequest(
                seller_id="seller-a",
                name="Kettle",
                base_price=pb_common.Money(amount=100, currency="JPY"),
                stock_quantity=1,
            )
        )
        assert await _names(edge, product.id) == {"Kettle"}  # cached in both
        await edge.products.update_product(
            pb.UpdateProductRequest(product_id=product.id, name="Kettle 2")
        )
        assert await _names(edge, product.id) == {"Kettle"}  # both serve their entry
        await edge.cache.invalidate(product.id)  # as the cache-invalidation consumer does

        async def fresh_everywhere() -> bool:
            return await _names(edge, product.id) == {"Kettle 2"}

        await wait_for(fresh_everywhere, timeout=20)


async def test_a_crashed_worker_is_started_again(tmp_path: Path) -> None:
    async with two_processes(tmp_path) as edge:
        (crashed,) = edge.workers.pids
        os.kill(crashed, signal.SIGKILL)

        async def replaced() -> bool:
            pids = edge.workers.pids
            return edge.workers.restarts == 1 and bool(pids) and crashed not in pids

        await wait_for(replaced, timeout=30)
        seen = {(await _fresh_get(f"{edge.url}/healthz"))["pid"] for _ in range(TRIES)}
        assert seen == {os.getpid(), *edge.workers.pids}
