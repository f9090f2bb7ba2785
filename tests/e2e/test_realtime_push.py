"""Push over /api/v1/ws against ``ec-recommend up``: a payment made through
REST reaches its buyer's socket (order service -> outbox -> SNS -> the
gateway's own SQS queue -> hub), and nobody else's."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ec_recommend import client as api
from ec_recommend.client_push import PushSubscription
from tests.e2e.conftest import System

pytestmark = pytest.mark.asyncio


async def until(messages: PushSubscription, wanted: Any, timeout: float = 30.0) -> dict[str, Any]:
    """The first pushed message matching ``wanted``, within the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = await messages.next(timeout=max(0.1, deadline - loop.time()))
        if wanted(message):
            return message


async def test_paying_through_rest_pushes_paid_to_the_buyer_only(system: System) -> None:
    seller = await system.seller()
    buyer = await system.customer()
    stranger = await system.customer()
    product = await seller.create_product("Push kettle", 5200, 1)

    with pytest.raises(api.Unauthorized):
        async with system.anonymous().subscribe("orders"):
            pass
    async with (
        buyer.subscribe("orders") as mine,
        stranger.subscribe("orders", auth="message") as theirs,
        system.anonymous().subscribe(f"product:{product['id']}") as shop_window,
    ):
        order = await buyer.create_order([(product["id"], 1)])
        await buyer.pay(order["id"])

        paid = await until(
            mine, lambda m: m["data"]["order_id"] == order["id"] and m["data"]["status"] == "PAID"
        )
        assert paid["type"] == "order.status_changed" and paid["topic"] == "orders"
        assert paid["event_id"] and paid["timestamp"]
        assert paid["data"]["total_amount"] == {"amount": 5200, "currency": "JPY"}

        sold_out = await until(shop_window, lambda m: m["type"] == "product.out_of_stock")
        assert sold_out["data"] == {"product_id": product["id"]}

        # the event reached this gateway already: anything for the stranger came first
        await theirs._socket().send_json({"type": "ping"})
        assert await theirs._receive(5) == {"type": "pong"}
