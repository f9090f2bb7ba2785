"""After CreateOrder, over real gRPC on both engines: payment, the status
machine, cancellation and stock, the payment timeout, who sees what, events."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import pytest
import sqlalchemy as sa

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import order as pb
from ec_recommend.config import Config, OrderConfig
from ec_recommend.platform import errors
from ec_recommend.platform.events.outbox import outbox
from ec_recommend.platform.storage import open_database
from ec_recommend.services.order.tables import MIGRATIONS, refunds
from tests.conftest import wait_for
from tests.integration.order.shop import Shop, acting_as, new_user

pytestmark = pytest.mark.asyncio


async def test_pay_then_ship_then_deliver(services, config) -> None:
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        product = await shop.product(stock=5, price=1500, seller_id="seller-a")
        buyer = new_user()
        with acting_as(buyer):
            order = await shop.order((product.id, 2))
        with acting_as(new_user(), seller_id="seller-a"), pytest.raises(errors.FailedPrecondition):
            await shop.set_status(order.id, "SHIPPED")  # not paid yet
        with acting_as(buyer):
            with pytest.raises(errors.FailedPrecondition):  # PAID only by paying
                await shop.set_status(order.id, "PAID")
            payment = await shop.pay(order.id)
            assert (payment.status, payment.amount.amount) == ("SUCCEEDED", 3000)
            assert payment.provider_payment_id.startswith("ch_")
            paid = await shop.get(order.id)
            assert (paid.status, paid.payment_id) == ("PAID", payment.payment_id)
            # Paying again charges nothing: the first payment is the answer.
            again = await shop.pay(order.id, "tok_mastercard")
            assert (again.payment_id, again.provider_payment_id) == (
                payment.payment_id,
                payment.provider_payment_id,
            )
            with pytest.raises(errors.PermissionDenied):  # buyers do not ship
                await shop.set_status(order.id, "SHIPPED")
        assert await shop.stock(product.id) == (3, 0)

        with acting_as(new_user(), seller_id="seller-other"), pytest.raises(errors.NotFound):
            await shop.set_status(order.id, "SHIPPED")
        with acting_as(new_user(), seller_id="seller-a"):
            assert (await shop.set_status(order.id, "SHIPPED")).status == "SHIPPED"
            with pytest.raises(errors.PermissionDenied):  # sellers do not cancel
                await shop.set_status(order.id, "CANCELLED")
        with acting_as(new_user(), admin=True), pytest.raises(errors.FailedPrecondition):
            await shop.set_status(order.id, "CANCELLED")  # shipped is too late
        with acting_as(new_user(), seller_id="seller-a"):
            assert (await shop.set_status(order.id, "DELIVERED")).status == "DELIVERED"
            with pytest.raises(errors.FailedPrecondition):
                await shop.set_status(order.id, "SHIPPED")
    async with open_database(config.storage, "order", MIGRATIONS) as db, db.reading() as conn:
        rows = (await conn.execute(sa.select(outbox).order_by(outbox.c.seq))).all()
    # One event per change, each written with the change itself.
    assert [r.event_type for r in rows] == [
        "order.created",
        "order.paid",
        "order.shipped",
        "order.delivered",
    ]


async def test_cancel_unpaid_releases_and_cancel_paid_restocks_and_refunds(
    services, config
) -> None:
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        product = await shop.product(stock=4)
        buyer = new_user()
        with acting_as(buyer):
            unpaid = await shop.order((product.id, 1))
            paid = await shop.order((product.id, 2))
            await shop.pay(paid.id)
            assert await shop.stock(product.id) == (1, 1)
            assert (await shop.set_status(unpaid.id, "CANCELLED")).status == "CANCELLED"
            assert await shop.stock(product.id) == (2, 0)
            assert (await shop.set_status(paid.id, "CANCELLED")).status == "CANCELLED"
            assert await shop.stock(product.id) == (4, 0)
            with pytest.raises(errors.FailedPrecondition):
                await shop.set_status(unpaid.id, "CANCELLED")
            # Known to this process as it was created, unpaid: the charge's start
            # reads its status, and refuses.
            with pytest.raises(errors.FailedPrecondition) as refused:
                await shop.pay(unpaid.id)
            assert refused.value.details["reason"] == "not_payable"
    async with open_database(config.storage, "order", MIGRATIONS) as db, db.reading() as conn:
        rows = (await conn.execute(sa.select(refunds))).all()
        events = [
            r.event_type for r in await conn.execute(sa.select(outbox).order_by(outbox.c.seq))
        ]
    assert [(r.order_id, r.amount) for r in rows] == [(paid.id, 2000)]
    assert rows[0].provider_refund_id.startswith("re_")
    assert events == [
        "order.created",
        "order.created",
        "order.paid",
        "order.cancelled",
        "order.cancelled",
    ]


async def test_declined_and_failed_payments_leave_the_order_payable(services) -> None:
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        product = await shop.product(stock=3)
        with acting_as(new_user()):
            order = await shop.order((product.id, 1))
            with pytest.raises(errors.PaymentDeclined) as declined:
                await shop.pay(order.id, "tok_chargeDeclined")
            assert declined.value.details["reason"] == "payment_declined"
            with pytest.raises(errors.Unavailable):
                await shop.pay(order.id, "tok_processingError")
            with pytest.raises(errors.InvalidArgument) as bad:
                await shop.pay(order.id, "tok_unknown")
            assert bad.value.details["field"] == "payment_method.token"
            assert (await shop.get(order.id)).status == "PENDING_PAYMENT"
            assert await shop.stock(product.id) == (2, 1)
            assert (await shop.pay(order.id)).status == "SUCCEEDED"
            assert (await shop.get(order.id)).status == "PAID"
        assert await shop.stock(product.id) == (2, 0)


async def test_unpaid_orders_are_cancelled_after_the_payment_timeout(
    services, config: Config
) -> None:
    quick = dataclasses.replace(config, order=OrderConfig(payment_timeout=0.5, sweep_interval=0.1))
    async with services("product", "cart", "order", config_override=quick) as hosted:
        shop = Shop(hosted)
        product = await shop.product(stock=5)
        with acting_as(new_user()):
            stale = await shop.order((product.id, 2))
            paid = await shop.order((product.id, 1))
            await shop.pay(paid.id)

            async def stale_cancelled() -> bool:
                return (await shop.get(stale.id)).status == "CANCELLED"

            await wait_for(stale_cancelled, timeout=10)
            assert (await shop.get(paid.id)).status == "PAID"
        await wait_for(lambda: _stock_is(shop, product.id, (4, 0)), timeout=10)


async def _stock_is(shop: Shop, product_id: str, expected: tuple[int, int]) -> bool:
    return await shop.stock(product_id) == expected


async def test_orders_are_private_to_buyer_sellers_and_admins(services) -> None:
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        mine = await shop.product(stock=5, seller_id="seller-a")
        theirs = await shop.product(stock=5, seller_id="seller-b")
        buyer, stranger = new_user(), new_user()
        with acting_as(buyer):
            order = await shop.order((mine.id, 1))
        with acting_as(stranger):
            for attempt in (
                shop.get(order.id),
                shop.pay(order.id),
                shop.set_status(order.id, "CANCELLED"),
            ):
                with pytest.raises(errors.NotFound):
                    await attempt
            with pytest.raises(errors.PermissionDenied):
                await shop.orders.list_orders(pb.ListOrdersRequest(user_id=buyer))
            assert (await shop.orders.list_orders(pb.ListOrdersRequest())).orders == []
        with acting_as(new_user(), seller_id="seller-b"):
            with pytest.raises(errors.NotFound):
                await shop.get(order.id)
            listed = await shop.orders.list_orders(pb.ListOrdersRequest(seller_id="seller-b"))
            assert listed.orders == []
            with pytest.raises(errors.PermissionDenied):
                await shop.orders.list_orders(pb.ListOrdersRequest(seller_id="seller-a"))
        with acting_as(new_user(), seller_id="seller-a"):
            assert (await shop.get(order.id)).id == order.id
            listed = await shop.orders.list_orders(pb.ListOrdersRequest(seller_id="seller-a"))
            assert [o.id for o in listed.orders] == [order.id]
            with pytest.raises(errors.PermissionDenied):  # sellers ship, buyers pay
                await shop.pay(order.id)
        with acting_as(new_user(), admin=True):
            assert (await shop.get(order.id)).id == order.id
        # Internal callers (no identity) list everything, e.g. for backfills.
        everything = await shop.orders.list_orders(
            pb.ListOrdersRequest(status="PENDING_PAYMENT", page=pb_common.PageRequest(page_size=10))
        )
        assert [o.id for o in everything.orders] == [order.id]
        assert theirs.id not in {i.product_id for i in order.items}


async def test_paying_and_cancelling_at_once_always_ends_cancelled_with_stock_back(
    services,
) -> None:
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        product = await shop.product(stock=20)
        buyer = new_user()
        with acting_as(buyer):
            orders = [await shop.order((product.id, 2)) for _ in range(8)]

            async def pay(order_id: str) -> None:
                # Refused when the cancel came first (or refunded when it came mid-charge).
                with contextlib.suppress(errors.FailedPrecondition):
                    await shop.pay(order_id)

            await asyncio.gather(
                *(pay(o.id) for o in orders),
                *(shop.set_status(o.id, "CANCELLED") for o in orders),
            )
            final = [await shop.get(o.id) for o in orders]
        assert {o.status for o in final} == {"CANCELLED"}
        await wait_for(lambda: _stock_is(shop, product.id, (20, 0)), timeout=10)
