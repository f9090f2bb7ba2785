"""Composition of the search service: its index database, the product backfill, the handler."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.registry import ServiceEnv
from ec_recommend.services.search.index import SearchIndex, open_search_index
from ec_recommend.services.search.product_feed import poll_products
from ec_recommend.services.search.service import SearchService, snapshot_from_pb
from ec_recommend.services.search.tables import MIGRATIONS


def index_product(index: SearchIndex) -> Callable[[pb_product.Product], Awaitable[bool]]:
    async def apply(product: pb_product.Product) -> bool:
        return await index.upsert(snapshot_from_pb(product))

    return apply


@asynccontextmanager
async def build(env: ServiceEnv) -> AsyncIterator[Sequence[object]]:
    async with open_database(env.config.storage, "search", MIGRATIONS) as db:
        index = open_search_index(db)
        backfill = asyncio.create_task(
            poll_products(
                "search",
                lambda: env.clients.stub(pb_product.ProductServiceStub, "product"),
                index_product(index),
                interval=env.config.projection_sync_interval,
            )
        )
        try:
            yield [SearchService(index)]
        finally:
            backfill.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await backfill
