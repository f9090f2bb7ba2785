"""Analytics subscriber and AnalyticsService on real stores, both engines."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from ec_recommend._gen.ecommerce import analytics as pb
from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import events as pb_events
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.config import Config
from ec_recommend.consumers.analytics import consumer, store
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.errors import InvalidArgument, PermissionDenied
from ec_recommend.platform.events.handling import handle_batch
from ec_recommend.platform.events.inbox import ensure_inbox
from ec_recommend.platform.rpc.context import CallContext, Identity, call_scope
from ec_recommend.platform.storage import open_database
from tests.conftest import ServicesFactory
from tests.integration.consumers.conftest import TransactionCount, apply, event, order
from tests.integration.statement_count import statements_on

pytestmark = pytest.mark.asyncio


def view(product_id: str) -> pb_events.UserActivity:
    return pb_events.UserActivity(
        user_id="", session_id="s1", activity="product_view", product_id=product_id
    )


async def test_counts_each_event_once_and_computes_conversion(config: Config) -> None:
    product = str(uuid.uuid4())
    handlers = consumer.handlers()
    async with open_database(config.storage, "analytics", store.MIGRATIONS) as db:
        views = [event("analytics.user_activity", view(product)) for _ in range(4)]
        for evt in [*views, views[0]]:  # the first view is delivered twice
            await apply(db, handlers[evt.type], evt)
        paid = event(
            "order.paid",
            pb_events.OrderPaid(order=order([(product, "s", 2, 500)], paid=True), payment_id="p"),
        )
        await apply(db, handlers["order.paid"], paid)
        await apply(db, handlers["order.paid"], paid)
        # The same order paid again under another event id sells nothing more.
        await apply(db, handlers["order.paid"], event("order.paid", paid.data))

        reader = store.AnalyticsReader(db)
        [stats] = await reader.product_counters([product])
        assert (stats.views, stats.paid_quantity, stats.paid_orders) == (4, 2, 1)
        assert stats.revenue == 1000
        assert stats.conversion == pytest.approx(0.5)
        today = utcnow().date()
        counts = {c.event_type: c.count for c in await reader.daily_counts(today, today)}
        assert counts == {"analytics.user_activity": 4, "order.paid": 2}


async def test_analytics_service_answers_and_rejects_bad_queries(
    config: Config, services: ServicesFactory
) -> None:
    product = str(uuid.uuid4())
    async with open_database(config.storage, "analytics", store.MIGRATIONS) as db:
        await apply(db, consumer.count, event("user.created", pb_events.UserCreated(user_id="u")))
        await apply(db, consumer.on_user_activity, event("analytics.user_activity", view(product)))
    async with services("analytics") as hosted:
        stub = hosted.clients.stub(pb.AnalyticsServiceStub, "analytics")
        counts = await stub.get_event_counts(pb.EventCountsRequest(event_type="user.created"))
        assert [(c.event_type, c.count) for c in counts.counts] == [("user.created", 1)]
        stats = await stub.get_product_stats(
            pb.ProductStatsRequest(product_ids=[product, str(uuid.uuid4())])
        )
        assert [(s.views, s.conversion) for s in stats.stats] == [(1, 0.0), (0, 0.0)]

        tomorrow = (utcnow().date() + timedelta(days=1)).isoformat()
        bad_requests = [
            pb.EventCountsRequest(from_day="yesterday"),
            pb.EventCountsRequest(from_day=tomorrow, to_day=utcnow().date().isoformat()),
            pb.EventCountsRequest(from_day="2000-01-01", to_day="2001-01-02"),
            pb.EventCountsRequest(event_type="no.such"),
        ]
        for request in bad_requests:
            with pytest.raises(InvalidArgument):
                await stub.get_event_counts(request)
        for ids in ([], ["not-an-id"], [str(uuid.uuid4())] * 501):
            with pytest.raises(InvalidArgument):
                await stub.get_product_stats(pb.ProductStatsRequest(product_ids=ids))

        customer = Identity(user_id=str(uuid.uuid4()), roles=frozenset({"customer"}))
        with call_scope(CallContext(identity=customer)), pytest.raises(PermissionDenied):
            await stub.get_event_counts(pb.EventCountsRequest())
        admin = Identity(user_id=str(uuid.uuid4()), roles=frozenset({"admin"}))
        with call_scope(CallContext(identity=admin)):
            assert (await stub.get_event_counts(pb.EventCountsRequest())).counts


async def test_a_seller_reads_the_stats_of_its_own_products_only(
    config: Config, services: ServicesFactory
) -> None:
    async with services("product", "analytics") as hosted:
        products = hosted.clients.stub(pb_product.ProductServiceStub, "product")
        owned = {}
        for seller in ("seller-a", "seller-b"):
            created = await products.create_product(
                pb_product.CreateProductRequest(
                    seller_id=seller,
                    name=f"{seller} mug",
                    base_price=pb_common.Money(amount=1000, currency="JPY"),
                    stock_quantity=1,
                )
            )
            owned[seller] = created.id
        stub = hosted.clients.stub(pb.AnalyticsServiceStub, "analytics")
        seller_a = Identity(user_id="sub-a", roles=frozenset({"seller"}), seller_id="seller-a")
        with call_scope(CallContext(identity=seller_a)):
            mine = pb.ProductStatsRequest(product_ids=[owned["seller-a"]])
            assert [s.product_id for s in (await stub.get_product_stats(mine)).stats] == [
                owned["seller-a"]
            ]
            both = pb.ProductStatsRequest(product_ids=[owned["seller-a"], owned["seller-b"]])
            with pytest.raises(PermissionDenied) as refused:
                await stub.get_product_stats(both)
            assert refused.value.details["product_id"] == owned["seller-b"]
        customer = Identity(user_id="sub-c", roles=frozenset({"customer"}))
        with call_scope(CallContext(identity=customer)), pytest.raises(PermissionDenied):
            await stub.get_product_stats(mine)


async def test_concurrent_batches_count_in_one_transaction_each(config: Config) -> None:
    # Each batch upserts the same hot counters (a type's count for today, a
    # product's stats). Taken in the order events arrive, two batches on
    # PostgreSQL locked them in opposite orders and deadlocked; the loser fell
    # back to a transaction per event, a second late. Counters are now written
    # at commit, merged, in key order.
    products = [str(uuid.uuid4()) for _ in range(3)]
    paid = [
        event(
            "order.paid",
            pb_events.OrderPaid(
                order=order([(p, "s", 1, 100) for p in products], paid=True), payment_id="p"
            ),
        )
        for _ in range(12)
    ]
    views = [event("analytics.user_activity", view(products[n % 3])) for n in range(12)]
    created = [event("user.created", pb_events.UserCreated(user_id=f"u{n}")) for n in range(12)]
    kinds = [paid, views, created]
    # Batch n takes its events from the three kinds in a rotated order.
    batches = [
        [kinds[(n + k) % 3][n * 2 + i] for k in range(3) for i in range(2)] for n in range(6)
    ]
    for batch in batches:
        if batch[0].type != "order.paid":
            batch.reverse()
    handlers = consumer.handlers()
    async with open_database(config.storage, "analytics", store.MIGRATIONS) as db:
        await ensure_inbox(db)
        transactions = TransactionCount(db)
        outcomes = await asyncio.gather(
            *(handle_batch(db, "analytics", handlers, batch) for batch in batches)
        )
        assert [o.status for batch in outcomes for o in batch] == ["handled"] * 36
        assert transactions.count == len(batches)

        reader = store.AnalyticsReader(db)
        today = utcnow().date()
        counts = {c.event_type: c.count for c in await reader.daily_counts(today, today)}
        assert counts == {"order.paid": 12, "analytics.user_activity": 12, "user.created": 12}
        stats = await reader.product_counters(products)
        assert [(s.views, s.paid_quantity, s.paid_orders, s.revenue) for s in stats] == [
            (4, 12, 12, 1200)
        ] * 3


@pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
async def test_a_batch_costs_a_statement_a_step_not_one_an_event(config: Config) -> None:
    handlers = consumer.handlers()
    product = str(uuid.uuid4())

    def batch(size: int) -> list[Any]:
        made = []
        for n in range(size):
            if n % 2:
                placed = order([(product, "s", 1, 100)], paid=True)
                made.append(event("order.paid", pb_events.OrderPaid(order=placed, payment_id="p")))
            else:
                made.append(event("analytics.user_activity", view(product)))
        return made

    async with open_database(config.storage, "analytics", store.MIGRATIONS) as db:
        await ensure_inbox(db)
        await handle_batch(db, "analytics", handlers, batch(2))  # first-use statements
        for size in (2, 10):
            with statements_on(config.storage, "analytics") as seen:
                outcomes = await handle_batch(db, "analytics", handlers, batch(size))
            assert {o.status for o in outcomes} == {"handled"}
            # BEGIN; the inbox claim, the events' ids, the orders' ids, then
            # the day's counts and the product's views and sales. Each event
            # was an INSERT of its own, and each paid order another.
            assert dict(seen) == {"BEGIN": 1, "INSERT": 6}, size
        [stats] = await store.AnalyticsReader(db).product_counters([product])
        assert (stats.views, stats.paid_orders) == (7, 7)
