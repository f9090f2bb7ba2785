"""Composition of the product service: its database, its gRPC handler, and
the sweep that gives back the units of reservations whose lease ran out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.registry import ServiceEnv
from ec_recommend.services.product.leases import Leases, sweep_forever
from ec_recommend.services.product.service import ProductService
from ec_recommend.services.product.store import MIGRATIONS, ProductStore


@asynccontextmanager
async def build(env: ServiceEnv) -> AsyncIterator[Sequence[object]]:
    settings = env.config.stock
    async with open_database(env.config.storage, "product", MIGRATIONS) as db:
        env.outboxes.append(db)  # the host relays its events
        store = ProductStore(db, reservation_lease=settings.reservation_lease)
        leases = Leases(db)
        sweeper = asyncio.create_task(
            sweep_forever(leases, settings.lease_sweep_interval), name="product-lease-sweep"
        )
        try:
            yield [ProductService(store, leases)]
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
