"""Analytics subscriber and AnalyticsService on real stores, both engines."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from ec_recommend._gen.ecommerce import analytics as pb
from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import events as pb_events
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.config import Config
from ec_recommend.consumers.analytics import consumer, store
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.errors import InvalidArgument, PermissionDenied
from ec_recommend.platform.rpc.context import CallContext, Identity, call_scope
from ec_recommend.platform.storage import open_database
from tests.conftest import ServicesFactory
from tests.integration.consumers.conftest import apply, event, order

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
