"""Push over /api/v1/ws against ``ec-recommend up``: a payment made through
REST reaches its buyer's socket (order service -> outbox -> SNS, heard by
the gateway beside the relay in up's process -> hub), and nobody else's; a
gateway elsewhere gets it through an SQS queue of its own."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from ec_recommend import client as api
from ec_recommend.client_push import PushSubscription
from ec_recommend.config import Config, EventsConfig, RealtimeConfig
from ec_recommend.edge.realtime.metrics import CountingMetrics
from ec_recommend.edge.realtime.setup import open_realtime
from tests.conftest import wait_for
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


async def test_a_second_gateway_sees_an_order_paid_through_the_first(system: System) -> None:
    """Gateway B's push side (its own SQS queue, in this process) gets what A changed."""
    seller = await system.seller()
    buyer = await system.customer()
    buyer_id = (await buyer.me())["id"]
    product = await seller.create_product("Second gateway mug", 1200, 3)
    events = EventsConfig(
        enabled=True,
        endpoint_url=system.endpoints["aws_endpoint_url"],
        region=system.endpoints["region"],
        consumer_wait_seconds=1,
    )
    config = Config(events=events, realtime=RealtimeConfig(backend="sqs"))
    async with open_realtime(config, CountingMetrics()) as gateway_b:
        assert gateway_b.fanout is not None and gateway_b.fanout.name == "sqs"
        connection = gateway_b.hub.register(buyer_id)
        gateway_b.hub.subscribe(connection, "orders")
        order = await buyer.create_order([(product["id"], 1)])
        await buyer.pay(order["id"])  # through gateway A

        def paid_on_b() -> bool:
            frames = [orjson.loads(f) for f in connection.queued()]
            return any(
                f.get("data", {}).get("order_id") == order["id"] and f["data"]["status"] == "PAID"
                for f in frames
            )

        await wait_for(paid_on_b, timeout=30)
