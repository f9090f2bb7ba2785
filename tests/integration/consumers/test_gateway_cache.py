"""GET /api/v1/products/{id} reads through the product cache; a product event
handled by the cache-invalidation consumer makes the next read fresh."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import events as pb_events
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import CacheConfig, Config, EventsConfig, GatewayConfig
from ec_recommend.consumers import cache_invalidation
from ec_recommend.edge.gateway.app import GatewaySetup, create_app
from ec_recommend.platform.cache import open_product_cache
from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.host import HostedServices, host_services
from tests.conftest import REDIS_URL, require_service
from tests.integration.consumers.conftest import apply, event, no_tokens

pytestmark = pytest.mark.asyncio


@asynccontextmanager
async def gateway(config: Config) -> AsyncIterator[tuple[TestClient[Any, Any], HostedServices]]:
    async with host_services(config, ["user", "product"]) as hosted:
        app = create_app(GatewaySetup(config=config, verifier=no_tokens, clients=hosted.clients))
        async with TestClient(TestServer(app)) as http:
            yield http, hosted


def _with_cache(config: Config, *, events: bool, redis: bool) -> Config:
    return replace(
        config,
        # Enabled events mean product events reach the cache-invalidation consumer.
        events=EventsConfig(enabled=events, name_prefix=f"t{uuid.uuid4().hex[:8]}-"),
        cache=CacheConfig(redis_url=REDIS_URL if redis else None, ttl=300),
        gateway=replace(GatewayConfig(), rate_limit_anonymous=10_000),
    )


async def _price(http: TestClient[Any, Any], product_id: str) -> int:
    response = await http.get(f"/api/v1/products/{product_id}")
    assert response.status == 200
    body = await response.json()
    return int(body["base_price"]["amount"])


@pytest.mark.parametrize("backend", ["local", "redis"])
async def test_price_change_is_served_after_its_event_is_handled(
    config: Config, backend: str
) -> None:
    if backend == "redis":
        require_service(REDIS_URL, 6379, "Redis")
    config = _with_cache(config, events=True, redis=backend == "redis")
    async with (
        gateway(config) as (http, hosted),
        open_product_cache(config.cache) as cache,  # what the consumer in this process uses
        open_database(config.storage, "cache_invalidation", cache_invalidation.MIGRATIONS) as db,
    ):
        products = hosted.clients.stub(pb.ProductServiceStub, "product")
        product = await products.create_product(
            pb.CreateProductRequest(
                seller_id="seller-1",
                name="風呂敷",
                base_price=pb_common.Money(amount=2000, currency="JPY"),
                stock_quantity=1,
            )
        )
        assert await _price(http, product.id) == 2000
        # A change made behind the gateway's back (another gateway, a batch job):
        await products.update_product(
            pb.UpdateProductRequest(
                product_id=product.id, base_price=pb_common.Money(amount=1800, currency="JPY")
            )
        )
        assert await _price(http, product.id) == 2000  # cached until the event
        updated = event("product.updated", pb_events.ProductUpdated(product_id=product.id))
        handlers = cache_invalidation.CacheInvalidator(cache).handlers()
        await apply(db, handlers[updated.type], updated)
        assert await _price(http, product.id) == 1800

        # Upper-case ids name the same product and the same cache entry.
        assert await _price(http, product.id.upper()) == 1800
        response = await http.get("/api/v1/products/not-an-id")
        assert response.status == 400


async def test_without_product_events_nothing_is_cached(config: Config) -> None:
    config = _with_cache(config, events=False, redis=False)
    async with gateway(config) as (http, hosted):
        products = hosted.clients.stub(pb.ProductServiceStub, "product")
        product = await products.create_product(
            pb.CreateProductRequest(
                seller_id="seller-1",
                name="手拭い",
                base_price=pb_common.Money(amount=900, currency="JPY"),
                stock_quantity=1,
            )
        )
        assert await _price(http, product.id) == 900
        await products.update_product(
            pb.UpdateProductRequest(
                product_id=product.id, base_price=pb_common.Money(amount=700, currency="JPY")
            )
        )
        assert await _price(http, product.id) == 700
