"""Payments under faults: a caller that gives up at any point never leaves an
attempt PROCESSING for good, and paying again finishes the order."""

from __future__ import annotations

import asyncio
import random
from contextlib import suppress
from datetime import timedelta

import pytest

from ec_recommend.platform.storage import open_database
from ec_recommend.services.order import domain
from ec_recommend.services.order.checkout import Checkout
from ec_recommend.services.order.fulfilment import Fulfilment
from ec_recommend.services.order.ledger import Ledger
from ec_recommend.services.order.sandbox import open_sandbox
from ec_recommend.services.order.store import OrderStore
from ec_recommend.services.order.tables import MIGRATIONS, SUCCEEDED
from tests.chaos import invariants
from tests.integration.order.shop import Shop, new_user

pytestmark = [pytest.mark.asyncio, pytest.mark.chaos]

ORDERS = 80


async def test_pays_cancelled_at_any_point_all_end_and_pay_again(services, config) -> None:
    async with (
        services("product") as hosted,
        open_database(config.storage, "order", MIGRATIONS) as db,
        open_sandbox(config.storage) as provider,
    ):
        product = await Shop(hosted).product(stock=ORDERS)
        before = await invariants.stock_levels(config.storage)
        store, ledger = OrderStore(db), Ledger(db)
        fulfilment = Fulfilment(store, ledger, hosted.clients, provider)
        checkout = Checkout(store, ledger, hosted.clients)
        orders = [
            await checkout.create(new_user(), [(product.id, 1)], from_cart=False, key="")
            for _ in range(ORDERS)
        ]
        rng = random.Random(16)

        async def impatient(order: domain.Order, delay: float) -> None:
            # A caller whose deadline runs out somewhere inside pay().
            task = asyncio.create_task(fulfilment.pay(order, "tok_visa"))
            await asyncio.sleep(delay)
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task

        await asyncio.gather(*(impatient(o, 0.001 * 300 ** rng.random()) for o in orders))

        # Paying again (no deadline now) finishes every order.
        again = await asyncio.gather(
            *(fulfilment.pay(o, "tok_visa") for o in orders), return_exceptions=True
        )
        failures = [r for r in again if isinstance(r, BaseException)]
        assert not failures, failures[:3]
        assert all(p.status == SUCCEEDED for p in again if not isinstance(p, BaseException))

        await fulfilment.sweep(payment_timeout=3600)
        assert await invariants.payments_in_flight(config.storage, timedelta(0)) == []
        for order in orders:
            assert (await store.get(order.id)).status == domain.PAID
        await invariants.check_stock(config.storage, before)
