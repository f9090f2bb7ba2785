"""Composition of the product service: its database and its gRPC handler."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.registry import ServiceEnv
from ec_recommend.services.product.service import ProductService
from ec_recommend.services.product.store import MIGRATIONS, ProductStore


@asynccontextmanager
async def build(env: ServiceEnv) -> AsyncIterator[Sequence[object]]:
    async with open_database(env.config.storage, "product", MIGRATIONS) as db:
        env.outboxes.append(db)  # the host relays its events
        yield [ProductService(ProductStore(db))]
