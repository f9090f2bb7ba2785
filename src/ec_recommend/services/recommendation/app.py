"""Composition of the recommendation service: its database, the backfills, the handler."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.registry import ServiceEnv
from ec_recommend.services.recommendation.order_feed import poll_paid_orders
from ec_recommend.services.recommendation.recommender import Recommender
from ec_recommend.services.recommendation.service import RecommendationService
from ec_recommend.services.recommendation.store import MIGRATIONS, RecommendationStore
from ec_recommend.services.search.product_feed import poll_products
from ec_recommend.services.search.service import snapshot_from_pb


@asynccontextmanager
async def build(env: ServiceEnv) -> AsyncIterator[Sequence[object]]:
    async with open_database(env.config.storage, "recommendation", MIGRATIONS) as db:
        store = RecommendationStore(db)
        interval = env.config.projection_sync_interval

        async def catalogue(product: pb_product.Product) -> bool:
            return await store.upsert_product(snapshot_from_pb(product))

        backfills = [
            asyncio.create_task(
                poll_products(
                    "recommendation",
                    lambda: env.clients.stub(pb_product.ProductServiceStub, "product"),
                    catalogue,
                    interval=interval,
                )
            ),
            asyncio.create_task(
                poll_paid_orders(
                    store,
                    lambda: env.clients.stub(pb_order.OrderServiceStub, "order"),
                    interval=interval,
                )
            ),
        ]
        try:
            yield [RecommendationService(Recommender(store))]
        finally:
            for task in backfills:
                task.cancel()
            for task in backfills:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
