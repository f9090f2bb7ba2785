"""Search indexer, recommendation updater and cache invalidation against the real
product service and real stores (both engines; Redis for the shared cache)."""

from __future__ import annotations

import uuid

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import events as pb_events
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import CacheConfig, Config
from ec_recommend.consumers import cache_invalidation, recommendation, search
from ec_recommend.platform.cache import open_product_cache
from ec_recommend.platform.paging import Page
from ec_recommend.platform.storage import open_database
from ec_recommend.services.recommendation.store import MIGRATIONS as REC_MIGRATIONS
from ec_recommend.services.recommendation.store import RecommendationStore
from ec_recommend.services.search.domain import SearchFilters
from ec_recommend.services.search.index import open_search_index
from ec_recommend.services.search.tables import MIGRATIONS as SEARCH_MIGRATIONS
from tests.conftest import REDIS_URL, ServicesFactory, require_service
from tests.integration.consumers.conftest import apply, event, order

pytestmark = pytest.mark.asyncio

PAGE = Page(number=1, size=10, sort_by="relevance", descending=False)


async def _create(products: pb.ProductServiceStub, name: str, price: int) -> pb.Product:
    return await products.create_product(
        pb.CreateProductRequest(
            seller_id="seller-1",
            name=name,
            description="手作り",
            base_price=pb_common.Money(amount=price, currency="JPY"),
            stock_quantity=3,
        )
    )


async def _reprice(products: pb.ProductServiceStub, product_id: str, price: int) -> None:
    await products.update_product(
        pb.UpdateProductRequest(
            product_id=product_id, base_price=pb_common.Money(amount=price, currency="JPY")
        )
    )


def _updated(product_id: str) -> pb_events.ProductUpdated:
    return pb_events.ProductUpdated(product_id=product_id, seller_id="seller-1")


async def test_search_index_follows_product_events(
    config: Config, services: ServicesFactory
) -> None:
    async with (
        services("product") as hosted,
        open_database(config.storage, "search", SEARCH_MIGRATIONS) as index_db,
        open_database(config.storage, "search_indexer", search.MIGRATIONS) as db,
    ):
        products = hosted.clients.stub(pb.ProductServiceStub, "product")
        index = open_search_index(index_db)
        handlers = search.SearchIndexer(products, index).handlers()
        name = f"有田焼 {uuid.uuid4().hex[:6]}"
        product = await _create(products, name, 1000)
        created = event(
            "product.created", pb_events.ProductCreated(product_id=product.id, name=name)
        )
        await apply(db, handlers[created.type], created)
        hits, total = await index.search([name.split()[1]], SearchFilters(), PAGE)
        assert total == 1 and hits[0].product.base_price == 1000

        await _reprice(products, product.id, 1500)
        await apply(db, handlers["product.updated"], event("product.updated", _updated(product.id)))
        await apply(db, handlers[created.type], created)  # a late, older event changes nothing
        snapshot = await index.get(product.id)
        assert snapshot is not None and snapshot.base_price == 1500

        await products.delete_product(pb.GetProductRequest(product_id=product.id))
        await apply(db, handlers["product.updated"], event("product.updated", _updated(product.id)))
        assert await index.search([name.split()[1]], SearchFilters(), PAGE) == ([], 0)

        gone = str(uuid.uuid4())  # a product ProductService never had
        await apply(db, handlers["product.updated"], event("product.updated", _updated(gone)))
        assert await index.get(gone) is None


async def test_recommendations_count_a_paid_order_once_and_track_the_catalogue(
    config: Config, services: ServicesFactory
) -> None:
    async with (
        services("product") as hosted,
        open_database(config.storage, "recommendation", REC_MIGRATIONS) as rec_db,
        open_database(config.storage, recommendation.DATABASE, recommendation.MIGRATIONS) as db,
    ):
        products = hosted.clients.stub(pb.ProductServiceStub, "product")
        store = RecommendationStore(rec_db)
        handlers = recommendation.RecommendationUpdater(products, store).handlers()
        a = await _create(products, "急須", 3000)
        b = await _create(products, "湯呑", 800)
        for p in (a, b):
            created = event("product.created", pb_events.ProductCreated(product_id=p.id))
            await apply(db, handlers[created.type], created)
        assert set(await store.available([a.id, b.id])) == {a.id, b.id}

        placed = order([(a.id, "seller-1", 1, 3000), (b.id, "seller-1", 2, 800)], paid=True)
        paid = event("order.paid", pb_events.OrderPaid(order=placed, payment_id="p"))
        await apply(db, handlers["order.paid"], paid)
        await apply(db, handlers["order.paid"], paid)
        pairs = await store.co_purchases([a.id])
        assert pairs[a.id] == {b.id: 1}
        assert await store.paid_order_recorded(placed.id)

        refunded = event("order.cancelled", pb_events.OrderCancelled(order=placed, refunded=True))
        await apply(db, handlers["order.cancelled"], refunded)
        assert (await store.co_purchases([a.id])).get(a.id, {}).get(b.id, 0) == 0


async def test_signed_in_product_views_reach_the_users_history(config: Config) -> None:
    async with (
        open_database(config.storage, "recommendation", REC_MIGRATIONS) as rec_db,
        open_database(config.storage, recommendation.DATABASE, recommendation.MIGRATIONS) as db,
    ):
        store = RecommendationStore(rec_db)
        handlers = recommendation.RecommendationUpdater(None, store).handlers()  # type: ignore[arg-type]
        product_id = str(uuid.uuid4())

        def view(user_id: str, activity: str = "product_view") -> object:
            return event(
                "analytics.user_activity",
                pb_events.UserActivity(user_id=user_id, activity=activity, product_id=product_id),
            )

        for activity in (view("u-1"), view("u-1"), view(""), view("u-1", "search")):
            await apply(db, handlers["analytics.user_activity"], activity)
        assert await store.history("u-1") == ({}, {product_id: 2})


@pytest.mark.parametrize("backend", ["local", "redis"])
async def test_price_change_is_visible_on_the_next_read_after_its_event(
    config: Config, services: ServicesFactory, backend: str
) -> None:
    if backend == "redis":
        require_service(REDIS_URL, 6379, "Redis")
    settings = CacheConfig(redis_url=REDIS_URL if backend == "redis" else None, ttl=300)
    async with (
        services("product") as hosted,
        open_product_cache(settings) as cache,
        open_database(config.storage, "cache_invalidation", cache_invalidation.MIGRATIONS) as db,
    ):
        products = hosted.clients.stub(pb.ProductServiceStub, "product")
        product = await _create(products, "箸", 500)
        calls = 0

        async def load() -> bytes:  # the cache holds opaque bytes
            nonlocal calls
            calls += 1
            return bytes(await products.get_product(pb.GetProductRequest(product_id=product.id)))

        def price(entry: bytes) -> int:
            return pb.Product.parse(entry).base_price.amount

        assert price(await cache.read_through(product.id, load)) == 500
        await _reprice(products, product.id, 650)
        # Until the event is handled the cached price is served (within the TTL)...
        assert price(await cache.read_through(product.id, load)) == 500
        assert calls == 1
        handlers = cache_invalidation.CacheInvalidator(cache).handlers()
        await apply(db, handlers["product.updated"], event("product.updated", _updated(product.id)))
        # ...and the next read after it sees the new one.
        assert price(await cache.read_through(product.id, load)) == 650
        assert calls == 2
