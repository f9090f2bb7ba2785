"""Buying over HTTP against ``ec-recommend up``: browse, search, cart, order, pay,
decline, cancel, ship, and who may see or change an order."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ec_recommend import client as api
from tests.conftest import wait_for
from tests.e2e.conftest import System

pytestmark = pytest.mark.asyncio


async def test_browse_cart_order_pay_ship_deliver(system: System) -> None:
    seller = await system.seller()
    buyer = await system.customer()
    stranger = await system.customer()
    model = uuid.uuid4().hex[:10]
    product = await seller.create_product(f"Drip kettle {model}", 4800, 5, description="gooseneck")

    # The search index follows product events; the buyer finds it by a word of its name.
    async def findable() -> bool:
        found = await buyer.search(model)
        return [hit["product"]["id"] for hit in found.items] == [product["id"]]

    await wait_for(findable, timeout=30)
    seen = await system.anonymous().get_product(product["id"])
    assert seen["stock_quantity"] == 5
    cart = await buyer.add_to_cart(product["id"], 2)
    assert cart["total"]["amount"] == 9600
    with pytest.raises(api.Conflict) as too_many:
        await buyer.add_to_cart(product["id"], 4)
    assert too_many.value.details["product_id"] == product["id"]

    order = await buyer.create_order(from_cart=True)
    assert order["status"] == "PENDING_PAYMENT"
    assert order["order_number"].startswith("EC-")
    assert order["total_amount"] == {"amount": 9600, "currency": "JPY"}
    assert (await buyer.cart())["items"] == []
    stock = await seller.get_stock(product["id"])
    assert (stock["available_stock"], stock["reserved_stock"]) == (3, 2)

    with pytest.raises(api.NotFound):
        await stranger.get_order(order["id"])
    with pytest.raises(api.NotFound):
        await stranger.pay(order["id"])

    with pytest.raises(api.PaymentDeclined) as declined:
        await buyer.pay(order["id"], "tok_chargeDeclined")
    assert declined.value.status == 402
    assert (await buyer.get_order(order["id"]))["status"] == "PENDING_PAYMENT"

    key = uuid.uuid4().hex
    payment = await buyer.pay(order["id"], "tok_visa", idempotency_key=key)
    assert (payment["status"], payment["amount"]["amount"]) == ("SUCCEEDED", 9600)
    again = await buyer.pay(order["id"], "tok_visa", idempotency_key=key)
    assert again["payment_id"] == payment["payment_id"]
    assert (await buyer.get_order(order["id"]))["status"] == "PAID"
    stock = await seller.get_stock(product["id"])
    assert (stock["available_stock"], stock["reserved_stock"]) == (3, 0)  # reserved -> sold

    with pytest.raises(api.Forbidden):
        await buyer.update_order_status(order["id"], "SHIPPED")
    shipped = await seller.update_order_status(order["id"], "SHIPPED")
    assert shipped["status"] == "SHIPPED"
    with pytest.raises(api.Conflict):
        await buyer.cancel_order(order["id"])
    sellers_view = await seller.list_orders(seller_id=product["seller_id"])
    assert [o["id"] for o in sellers_view.items] == [order["id"]]
    delivered = await seller.update_order_status(order["id"], "DELIVERED")
    assert delivered["status"] == "DELIVERED"


async def test_cancel_releases_stock_and_retries_make_one_order(system: System) -> None:
    seller = await system.seller()
    other_seller = await system.seller()
    buyer = await system.customer()
    product = await seller.create_product("Filter papers", 600, 4)

    key = uuid.uuid4().hex
    orders = await asyncio.gather(
        *(buyer.create_order([(product["id"], 3)], idempotency_key=key) for _ in range(5))
    )
    assert len({o["id"] for o in orders}) == 1
    with pytest.raises(api.Conflict):
        await buyer.create_order([(product["id"], 1)], idempotency_key=key)
    with pytest.raises(api.Conflict) as short:
        await buyer.create_order([(product["id"], 2)])
    assert short.value.details["product_id"] == product["id"]
    stock = await seller.get_stock(product["id"])
    assert (stock["available_stock"], stock["reserved_stock"]) == (1, 3)

    with pytest.raises(api.NotFound):  # not this seller's order
        await other_seller.update_order_status(orders[0]["id"], "SHIPPED")
    cancelled = await buyer.cancel_order(orders[0]["id"])
    assert cancelled["status"] == "CANCELLED"
    stock = await seller.get_stock(product["id"])
    assert (stock["available_stock"], stock["reserved_stock"]) == (4, 0)
    with pytest.raises(api.Conflict):
        await buyer.pay(orders[0]["id"])
    with pytest.raises(api.InvalidRequest):
        await buyer.create_order([(product["id"], 0)])
