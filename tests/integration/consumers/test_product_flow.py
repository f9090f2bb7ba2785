"""Product events through SNS/SQS (moto) keep the projections and the gateway's
product cache current: the product service's outbox relay publishes, the
search indexer, recommendation updater and cache invalidation consume."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import CacheConfig, Config, GatewayConfig
from ec_recommend.consumers import cache_invalidation, recommendation, search
from ec_recommend.edge.gateway.app import GatewaySetup, create_app
from ec_recommend.platform.events.provision import provision
from ec_recommend.platform.events.runner import running_consumers
from ec_recommend.platform.events.topology import load_topology
from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.local_aws import LocalAws
from ec_recommend.runtime.registry import ServiceEnv
from ec_recommend.services.recommendation.store import MIGRATIONS as REC_MIGRATIONS
from ec_recommend.services.recommendation.store import RecommendationStore
from ec_recommend.services.search.index import open_search_index
from ec_recommend.services.search.tables import MIGRATIONS as SEARCH_MIGRATIONS
from tests.conftest import ServicesFactory, events_on, wait_for
from tests.integration.consumers.conftest import no_tokens

pytestmark = pytest.mark.asyncio

SUBSCRIBERS = (search, recommendation, cache_invalidation)


async def test_product_changes_reach_index_catalogue_and_cache(
    config: Config, services: ServicesFactory, local_aws: LocalAws
) -> None:
    events = events_on(
        local_aws,
        relay_interval=0.05,
        consumer_wait_seconds=1,
        consumer_concurrency=2,
        shutdown_grace=2.0,
    )
    await provision(events, load_topology())
    config = replace(
        config,
        events=events,
        # A long TTL: only the product event can make the new price visible.
        cache=CacheConfig(ttl=300),
        gateway=replace(GatewayConfig(), rate_limit_anonymous=10_000),
    )
    async with (
        services("user", "product", config_override=config) as hosted,
        AsyncExitStack() as stack,
    ):
        env = ServiceEnv(config=config, clients=hosted.clients)
        subscriptions = [
            await stack.enter_async_context(module.subscription(env)) for module in SUBSCRIBERS
        ]
        await stack.enter_async_context(running_consumers(config.storage, events, subscriptions))
        app = create_app(GatewaySetup(config=config, verifier=no_tokens, clients=hosted.clients))
        http: TestClient[Any, Any] = await stack.enter_async_context(TestClient(TestServer(app)))
        index = open_search_index(
            await stack.enter_async_context(
                open_database(config.storage, "search", SEARCH_MIGRATIONS)
            )
        )
        catalogue = RecommendationStore(
            await stack.enter_async_context(
                open_database(config.storage, "recommendation", REC_MIGRATIONS)
            )
        )

        products = hosted.clients.stub(pb.ProductServiceStub, "product")
        product = await products.create_product(
            pb.CreateProductRequest(
                seller_id="seller-1",
                name="南部鉄器",
                base_price=pb_common.Money(amount=9000, currency="JPY"),
                stock_quantity=2,
            )
        )

        async def price_via_gateway() -> int:
            response = await http.get(f"/api/v1/products/{product.id}")
            assert response.status == 200
            return int((await response.json())["base_price"]["amount"])

        async def indexed_price() -> int | None:
            snapshot = await index.get(product.id)
            return None if snapshot is None else snapshot.base_price

        async def in_catalogue() -> bool:
            return product.id in await catalogue.available([product.id])

        await wait_for(lambda: _equals(indexed_price(), 9000), timeout=30, interval=0.2)
        await wait_for(in_catalogue, timeout=30, interval=0.2)
        assert await price_via_gateway() == 9000  # now cached

        await products.update_product(
            pb.UpdateProductRequest(
                product_id=product.id, base_price=pb_common.Money(amount=7500, currency="JPY")
            )
        )
        await wait_for(lambda: _equals(price_via_gateway(), 7500), timeout=30, interval=0.2)
        await wait_for(lambda: _equals(indexed_price(), 7500), timeout=30, interval=0.2)


async def _equals(value: Any, expected: object) -> bool:
    return bool(await value == expected)
