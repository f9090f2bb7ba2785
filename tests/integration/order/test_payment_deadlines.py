"""The order service cancels an unpaid order at its payment deadline, from its
own store's schedule: not at the next sweep interval, and never before."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from ec_recommend.config import Config
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.storage import open_database
from ec_recommend.services.order.store import OrderStore
from ec_recommend.services.order.tables import MIGRATIONS
from tests.conftest import wait_for
from tests.integration.order.shop import Shop, acting_as, new_user

pytestmark = pytest.mark.asyncio

TIMEOUT = 1.0


async def test_an_unpaid_order_is_cancelled_at_its_deadline_not_the_next_sweep(
    services, config: Config
) -> None:
    # The periodic sweep is an hour away: only the deadline schedule can act in time.
    rules = dataclasses.replace(config.order, payment_timeout=TIMEOUT, sweep_interval=3600.0)
    quick = dataclasses.replace(config, order=rules)
    async with services("product", "cart", "order", config_override=quick) as hosted:
        shop = Shop(hosted)
        product = await shop.product(stock=5)
        with acting_as(new_user()):
            first = await shop.order((product.id, 2))
            paid = await shop.order((product.id, 1))
            await shop.pay(paid.id)

            async def cancelled(order_id: str) -> bool:
                return (await shop.get(order_id)).status == "CANCELLED"

            await wait_for(lambda: cancelled(first.id), timeout=15, interval=0.05)
            # placed while the sweeper waits on nothing earlier: its own deadline counts
            second = await shop.order((product.id, 1))
            await wait_for(lambda: cancelled(second.id), timeout=15, interval=0.05)
            assert (await shop.get(paid.id)).status == "PAID"

        # The cancellation commits first; its stock is released right after it.
        async def settled() -> bool:
            return await shop.stock(product.id) == (4, 0)

        await wait_for(settled, timeout=15, interval=0.05)
    async with open_database(config.storage, "order", MIGRATIONS) as db:
        store = OrderStore(db)
        for order_id in (first.id, second.id):
            order = await store.get(order_id)
            # never before its deadline
            assert order.updated_at >= order.created_at + timedelta(seconds=TIMEOUT)
        assert await store.earliest_unpaid() is None


async def test_the_earliest_unpaid_order_is_read_from_the_store(services, config: Config) -> None:
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        product = await shop.product(stock=5)
        with acting_as(new_user()):
            older = await shop.order((product.id, 1))
            newer = await shop.order((product.id, 1))
            await shop.pay(older.id)
    async with open_database(config.storage, "order", MIGRATIONS) as db:
        store = OrderStore(db)
        placed = (await store.get(newer.id)).created_at
        assert await store.earliest_unpaid() == placed
        assert await store.earliest_unpaid(placed) == placed
        assert await store.earliest_unpaid(placed + timedelta(microseconds=1)) is None
        assert placed <= utcnow()
