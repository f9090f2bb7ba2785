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
        buyers_cancel = set(rng.sample(range(ORDERS), ORDERS // 4))

        async def impatient(n: int, order: domain.Order) -> None:
            # A caller whose deadline runs out somewhere inside pay(); some
            # buyers also cancel their order meanwhile.
            task = asyncio.create_task(fulfilment.pay(order, "tok_visa"))
            await asyncio.sleep(0.001 * 300 ** rng.random())
            if n in buyers_cancel:
                await fulfilment.change_status(order, domain.CANCELLED, "changed my mind")
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task

        await asyncio.gather(*(impatient(n, o) for n, o in enumerate(orders)))

        # Paying again (no deadline now) finishes every order still wanted.
        wanted = [o for n, o in enumerate(orders) if n not in buyers_cancel]
        again = await asyncio.gather(*(fulfilment.pay(o, "tok_visa") for o in wanted))
        assert {p.status for p in again} == {SUCCEEDED}

        await fulfilment.drain(30)
        await fulfilment.sweep(payment_timeout=3600)
        assert await invariants.payments_in_flight(config.storage, timedelta(0)) == []
        for n, order in enumerate(orders):
            expected = domain.CANCELLED if n in buyers_cancel else domain.PAID
            assert (await store.get(order.id)).status == expected
        assert await invariants.payment_problems(config.storage) == []
        await invariants.check_stock(config.storage, before)
