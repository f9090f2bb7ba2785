"""An order placed and paid reaches every order subscriber through SNS/SQS (moto).

Real services (user, product, order) publish through their outbox relays
(started by the host when events are enabled); the consumer runtime runs
inventory, notification, analytics, seller and recommendation subscribers,
each on its own queue and database.
"""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import timedelta

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.config import Config, NotificationConfig
from ec_recommend.consumers import inventory, notification, recommendation
from ec_recommend.consumers.analytics import consumer as analytics
from ec_recommend.consumers.analytics.store import MIGRATIONS as ANALYTICS_MIGRATIONS
from ec_recommend.consumers.analytics.store import AnalyticsReader
from ec_recommend.consumers.seller import consumer as seller
from ec_recommend.consumers.seller.store import MIGRATIONS as SELLER_MIGRATIONS
from ec_recommend.consumers.seller.store import LedgerReader
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.events.provision import provision
from ec_recommend.platform.events.runner import running_consumers
from ec_recommend.platform.events.topology import load_topology
from ec_recommend.platform.paging import Page
from ec_recommend.platform.rpc.context import CallContext, Identity, call_scope
from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.local_aws import LocalAws
from ec_recommend.runtime.registry import ServiceEnv
from ec_recommend.services.recommendation.store import MIGRATIONS as REC_MIGRATIONS
from ec_recommend.services.recommendation.store import RecommendationStore
from tests.conftest import ServicesFactory, events_on, wait_for
from tests.integration.consumers.conftest import sent_emails

pytestmark = pytest.mark.asyncio

SUBSCRIBERS = (inventory, notification, analytics, seller, recommendation)
DEADLINE = 30.0


def _system_config(config: Config, aws: LocalAws) -> Config:
    events = events_on(
        aws,
        relay_interval=0.05,
        relay_max_backoff=0.5,
        consumer_wait_seconds=1,
        consumer_concurrency=2,
        shutdown_grace=5.0,
    )
    sender = f"shop-{uuid.uuid4().hex[:8]}@example.com"
    return replace(
        config,
        events=events,
        notification=NotificationConfig(sender=sender, verify_sender=True),
    )


async def test_paid_order_reaches_every_subscriber(
    config: Config, services: ServicesFactory, local_aws: LocalAws
) -> None:
    config = _system_config(config, local_aws)
    await provision(config.events, load_topology())
    customer_email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    seller_email = f"seller-{uuid.uuid4().hex[:8]}@example.com"
    async with (
        services("user", "product", "order", config_override=config) as hosted,
        AsyncExitStack() as stack,
    ):
        env = ServiceEnv(config=config, clients=hosted.clients)
        subscriptions = [
            await stack.enter_async_context(module.subscription(env)) for module in SUBSCRIBERS
        ]
        await stack.enter_async_context(
            running_consumers(config.storage, config.events, subscriptions)
        )

        users = hosted.clients.stub(pb_user.UserServiceStub, "user")
        products = hosted.clients.stub(pb_product.ProductServiceStub, "product")
        orders = hosted.clients.stub(pb_order.OrderServiceStub, "order")
        buyer = await users.create_user(
            pb_user.CreateUserRequest(cognito_user_id=str(uuid.uuid4()), email=customer_email)
        )
        seller_user = await users.create_user(
            pb_user.CreateUserRequest(
                cognito_user_id=str(uuid.uuid4()),
                email=seller_email,
                seller_id=f"shop-{uuid.uuid4().hex[:8]}",
            )
        )
        made = []
        for name, price in (("急須", 3000), ("湯呑", 800)):
            made.append(
                await products.create_product(
                    pb_product.CreateProductRequest(
                        seller_id=seller_user.seller_id,
                        name=name,
                        description="",
                        base_price=pb_common.Money(amount=price, currency="JPY"),
                        stock_quantity=5,
                    )
                )
            )
        identity = Identity(user_id=buyer.id, email=customer_email, roles=frozenset({"customer"}))
        with call_scope(CallContext(identity=identity)):
            placed = await orders.create_order(
                pb_order.CreateOrderRequest(
                    items=[
                        pb_order.OrderLine(product_id=made[0].id, quantity=1),
                        pb_order.OrderLine(product_id=made[1].id, quantity=2),
                    ]
                )
            )
            payment = await orders.process_payment(
                pb_order.ProcessPaymentRequest(
                    order_id=placed.id,
                    payment_method=pb_order.PaymentMethod(type="card", token="tok_visa"),
                )
            )
        assert payment.status == "SUCCEEDED"

        async with (
            open_database(config.storage, "seller", SELLER_MIGRATIONS) as seller_db,
            open_database(config.storage, "analytics", ANALYTICS_MIGRATIONS) as analytics_db,
            open_database(config.storage, "recommendation", REC_MIGRATIONS) as rec_db,
        ):
            ledger = LedgerReader(seller_db)
            counters = AnalyticsReader(analytics_db)
            recommendations = RecommendationStore(rec_db)
            page = Page(number=1, size=10, sort_by="occurred_at", descending=False)
            today = utcnow().date()

            async def confirmation_sent() -> bool:
                mails = await sent_emails(local_aws.endpoint_url, customer_email)
                return any("Order confirmed" in m["subject"] for m in mails)

            async def ledger_booked() -> bool:
                entries, _total, balance = await ledger.page(seller_user.seller_id, page)
                return len(entries) == 2 and balance == 3000 + 2 * 800

            async def counted() -> bool:
                window = (today - timedelta(days=1), today + timedelta(days=1))
                counts = {c.event_type for c in await counters.daily_counts(*window)}
                return {"order.created", "order.paid"} <= counts

            async def reservation_committed() -> bool:
                stock = await products.get_stock(
                    pb_product.GetProductRequest(product_id=made[1].id)
                )
                return (stock.available_stock, stock.reserved_stock) == (3, 0)

            await wait_for(confirmation_sent, timeout=DEADLINE, interval=0.2)
            await wait_for(ledger_booked, timeout=DEADLINE, interval=0.2)
            await wait_for(counted, timeout=DEADLINE, interval=0.2)
            await wait_for(
                lambda: recommendations.paid_order_recorded(placed.id),
                timeout=DEADLINE,
                interval=0.2,
            )
            await wait_for(reservation_committed, timeout=DEADLINE, interval=0.2)

            async def seller_notified() -> bool:
                # The seller's email is the effect of the ledger entry: it
                # leaves after the entry commits, through a shared sender.
                mails = await sent_emails(local_aws.endpoint_url, seller_email)
                return any(placed.order_number in m["body"] for m in mails)

            await wait_for(seller_notified, timeout=DEADLINE, interval=0.2)

            pairs = await recommendations.co_purchases([made[0].id])
            assert pairs[made[0].id] == {made[1].id: 1}
            [stats] = await counters.product_counters([made[1].id])
            assert (stats.paid_quantity, stats.paid_orders) == (2, 1)
