"""The recommendation updater (recommendation-event-queue).

order.paid adds the order to the co-purchase and popularity statistics and
order.cancelled takes a refunded one back out: both are applied in the
recommendation service's database, in the transaction that records their
events in the inbox there, so each counts exactly once, and a received batch
counts its orders together (``CountsAtCommit``). A signed-in user's product
views (analytics.user_activity, sent by the gateway) shape their "for you"
list; product events refresh the catalogue snapshot the recommender filters
and compares with (an effect: it asks ProductService for the product).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.consumers.catalogue import PRODUCT_EVENTS, current_product, product_id_of
from ec_recommend.platform.events.consumer import EffectScope, Handler, Subscription
from ec_recommend.platform.events.envelope import Event
from ec_recommend.platform.storage import Migration, UnitOfWork, open_database
from ec_recommend.runtime.registry import ServiceEnv
from ec_recommend.services.recommendation.counts import CountsAtCommit, paid_order
from ec_recommend.services.recommendation.store import MIGRATIONS as STORE_MIGRATIONS
from ec_recommend.services.recommendation.store import RecommendationStore
from ec_recommend.services.search.service import snapshot_from_pb

QUEUE = "recommendation-event-queue"
# The inbox beside the counts it guards (the service's own database).
DATABASE = "recommendation"
MIGRATIONS: Sequence[Migration] = STORE_MIGRATIONS


class RecommendationUpdater:
    def __init__(self, products: pb_product.ProductServiceStub, store: RecommendationStore) -> None:
        self.products = products
        self.store = store

    async def on_order_paid(self, event: Event, uow: UnitOfWork) -> None:
        paid = event.data
        assert isinstance(paid, pb.OrderPaid) and paid.order is not None
        order = paid.order
        lines = [(item.product_id, item.quantity) for item in order.items]
        uow.at_commit(CountsAtCommit).paid(
            paid_order(order.id, order.user_id, lines, event.timestamp)
        )

    async def on_order_cancelled(self, event: Event, uow: UnitOfWork) -> None:
        cancelled = event.data
        assert isinstance(cancelled, pb.OrderCancelled) and cancelled.order is not None
        # Only a refunded order was ever counted; an unpaid one never was, and
        # recording it still keeps a late order.paid from counting it.
        uow.at_commit(CountsAtCommit).cancelled(cancelled.order.id)

    async def on_user_activity(self, event: Event, scope: EffectScope) -> None:
        activity = event.data
        assert isinstance(activity, pb.UserActivity)
        # Anonymous views and searches say nothing about a user's taste.
        if activity.activity == "product_view" and activity.user_id and activity.product_id:
            await self.store.record_view(activity.user_id, activity.product_id)

    async def on_product_event(self, event: Event, scope: EffectScope) -> None:
        product = await current_product(self.products, product_id_of(event), scope)
        if product is not None:
            await self.store.upsert_product(snapshot_from_pb(product))

    def handlers(self) -> dict[str, Handler]:
        # Orders are counted within the batch's transaction; views and snapshots
        # are effects, each its own short write (a snapshot keeps the newest).
        table = dict.fromkeys(PRODUCT_EVENTS, Handler(effect=self.on_product_event))
        table["order.paid"] = Handler(apply=self.on_order_paid)
        table["order.cancelled"] = Handler(apply=self.on_order_cancelled)
        table["analytics.user_activity"] = Handler(effect=self.on_user_activity)
        return table


@asynccontextmanager
async def subscription(env: ServiceEnv) -> AsyncIterator[Subscription]:
    async with open_database(env.config.storage, DATABASE, MIGRATIONS) as db:
        updater = RecommendationUpdater(
            env.clients.stub(pb_product.ProductServiceStub, "product"), RecommendationStore(db)
        )
        yield Subscription(
            name="recommendation",
            queue=QUEUE,
            database=DATABASE,
            migrations=MIGRATIONS,
            handlers=updater.handlers(),
        )
