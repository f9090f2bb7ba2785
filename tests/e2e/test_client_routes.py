"""The client reaches every commerce route through the gateway (smoke; the
services' own behaviour is tested by their suites)."""

from __future__ import annotations

import pytest

from ec_recommend import client as api
from ec_recommend.runtime.local_system import DEMO_PASSWORD
from tests.e2e.conftest import System

pytestmark = pytest.mark.asyncio


async def test_cart_order_payment_search_and_recommendations(system: System) -> None:
    shopper = await system.customer()
    catalogue = await shopper.list_products(seller_id="seller-demo", page_size=3)
    first, second = catalogue.items[0]["id"], catalogue.items[1]["id"]

    cart = await shopper.add_to_cart(first, 2)
    assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [(first, 2)]
    await shopper.add_to_cart(second)
    cart = await shopper.set_cart_quantity(second, 3)
    assert cart["total"]["amount"] == sum(i["line_total"]["amount"] for i in cart["items"])
    cart = await shopper.remove_from_cart(second)
    assert len(cart["items"]) == 1

    order = await shopper.create_order(from_cart=True)
    assert order["status"] == "PENDING_PAYMENT"
    assert order["items"][0]["product_id"] == first
    payment = await shopper.pay(order["id"], "tok_visa")
    assert payment["status"] == "SUCCEEDED"
    assert (await shopper.get_order(order["id"]))["status"] == "PAID"
    assert order["id"] in [o["id"] for o in (await shopper.list_orders()).items]

    declined = await shopper.create_order([(second, 1)])
    with pytest.raises(api.PaymentDeclined):
        await shopper.pay(declined["id"], "tok_chargeDeclined")
    assert (await shopper.cancel_order(declined["id"]))["status"] == "CANCELLED"

    stranger = await system.customer()
    with pytest.raises(api.NotFound):
        await stranger.get_order(order["id"])

    seller = system.anonymous()
    await seller.login("seller@example.com", DEMO_PASSWORD)
    shipped = await seller.update_order_status(order["id"], "SHIPPED")
    assert shipped["status"] == "SHIPPED"

    hits = await shopper.search("イヤホン", page_size=5)
    assert hits.items and "product" in hits.items[0] and "score" in hits.items[0]
    assert isinstance(await shopper.popular_products(limit=3), list)
    assert isinstance(await shopper.recommendations_for_you(limit=3), list)
    assert isinstance(await shopper.product_recommendations(first, limit=3), list)
    await shopper.clear_cart()
    assert (await shopper.cart())["items"] == []


async def test_seller_desk_and_operator_console_routes(system: System) -> None:
    seller = system.anonymous()
    await seller.login("seller@example.com", DEMO_PASSWORD)
    analytics = await seller.my_product_analytics(page_size=3, sort_by="name")
    assert len(analytics.items) == 3 and analytics.total_items >= 30
    assert {"product_id", "name", "views", "paid_quantity", "conversion", "revenue"} <= set(
        analytics.items[0]
    )
    ledger = await seller.my_ledger(page_size=2, descending=True)
    assert ledger["balance"]["currency"] == "JPY"

    operator = system.anonymous()
    await operator.login("admin@example.com", DEMO_PASSWORD)
    overview = await operator.admin_overview()
    assert {"order", "product"} <= {s["name"] for s in overview["services"] if s["serving"]}
    assert {o["service"] for o in overview["outboxes"]} >= {"order", "product"}
    queues = await operator.admin_queues()
    assert all(q["dlq_messages"] >= 0 for q in queues) and len(queues) >= 5
    with pytest.raises(api.NotFound):
        await operator.redrive_dead_letters("no-such-queue")
    with pytest.raises(api.NotFound):
        await operator.purge_dead_letters("no-such-queue")

    shopper = await system.customer()
    with pytest.raises(api.Forbidden):
        await shopper.admin_overview()
    with pytest.raises(api.Forbidden):
        await shopper.my_ledger()
    with pytest.raises(api.Forbidden):
        await operator.my_product_analytics()
