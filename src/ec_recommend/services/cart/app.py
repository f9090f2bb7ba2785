"""Composition of the cart service: its database, its product client, its handler."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.registry import ServiceEnv
from ec_recommend.services.cart.service import CartService
from ec_recommend.services.cart.store import MIGRATIONS, CartStore


@asynccontextmanager
async def build(env: ServiceEnv) -> AsyncIterator[Sequence[object]]:
    async with open_database(env.config.storage, "cart", MIGRATIONS) as db:
        yield [CartService(CartStore(db), env.clients)]
