"""The payment timeout as a delayed SQS message: an unpaid order is cancelled
at its deadline and its stock released; a paid one is left alone."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.config import Config
from ec_recommend.consumers import inventory
from ec_recommend.platform.events.provision import provision
from ec_recommend.platform.events.runner import running_consumers
from ec_recommend.platform.events.topology import load_topology
from ec_recommend.platform.rpc.context import CallContext, Identity, call_scope
from ec_recommend.runtime.local_aws import LocalAws
from ec_recommend.runtime.registry import ServiceEnv
from tests.conftest import ServicesFactory, events_on, wait_for

pytestmark = pytest.mark.asyncio


async def test_unpaid_order_is_cancelled_at_its_deadline(
    config: Config, services: ServicesFactory, local_aws: LocalAws
) -> None:
    events = events_on(
        local_aws,
        relay_interval=0.05,
        consumer_wait_seconds=1,
        consumer_concurrency=2,
        shutdown_grace=2.0,
    )
    await provision(events, load_topology())
    # The order service's own sweep is an hour away: only the delayed message can act.
    order_rules = replace(config.order, payment_timeout=2.0, sweep_interval=3600.0)
    config = replace(config, events=events, order=order_rules)
    async with services("product", "order", config_override=config) as hosted:
        env = ServiceEnv(config=config, clients=hosted.clients)
        async with (
            inventory.subscription(env) as subscription,
            running_consumers(config.storage, events, [subscription]) as [worker],
        ):
            products = hosted.clients.stub(pb_product.ProductServiceStub, "product")
            orders = hosted.clients.stub(pb_order.OrderServiceStub, "order")
            product = await products.create_product(
                pb_product.CreateProductRequest(
                    seller_id="seller-1",
                    name="鉄瓶",
                    base_price=pb_common.Money(amount=5000, currency="JPY"),
                    stock_quantity=5,
                )
            )
            line = pb_order.OrderLine(product_id=product.id, quantity=2)
            buyer = Identity(user_id=str(uuid.uuid4()), roles=frozenset({"customer"}))
            with call_scope(CallContext(identity=buyer)):
                unpaid = await orders.create_order(pb_order.CreateOrderRequest(items=[line]))
                paid = await orders.create_order(pb_order.CreateOrderRequest(items=[line]))
                await orders.process_payment(
                    pb_order.ProcessPaymentRequest(
                        order_id=paid.id,
                        payment_method=pb_order.PaymentMethod(type="card", token="tok_visa"),
                    )
                )

            async def status(order_id: str) -> str:
                found = await orders.get_order(pb_order.GetOrderRequest(order_id=order_id))
                return found.status

            async def unpaid_cancelled() -> bool:
                return await status(unpaid.id) == "CANCELLED"

            await wait_for(unpaid_cancelled, timeout=30, interval=0.2)

            async def stock_released() -> bool:
                stock = await products.get_stock(
                    pb_product.GetProductRequest(product_id=product.id)
                )
                return (stock.available_stock, stock.reserved_stock) == (3, 0)

            await wait_for(stock_released, timeout=30, interval=0.2)
            # Both deadline copies were handled (2 originals + 2 copies, at least).
            await wait_for(lambda: worker.stats.by_type.get("order.created", 0) >= 4, timeout=30)
            assert await status(paid.id) == "PAID"
