"""The search indexer (search-index-queue): keeps the search index current.

Each product event re-reads the product and upserts its snapshot; archived
products stay in the index as tombstones the search never returns (so a late
event cannot resurrect them), and a product ProductService no longer knows is
removed. The index lives in the search service's database; this consumer's
own database holds only its inbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.consumers.catalogue import PRODUCT_EVENTS, current_product, product_id_of
from ec_recommend.platform.events.consumer import EffectScope, Handler, Subscription
from ec_recommend.platform.events.envelope import Event
from ec_recommend.platform.storage import Migration, open_database
from ec_recommend.runtime.registry import ServiceEnv
from ec_recommend.services.search.index import SearchIndex, open_search_index
from ec_recommend.services.search.service import snapshot_from_pb
from ec_recommend.services.search.tables import MIGRATIONS as INDEX_MIGRATIONS

QUEUE = "search-index-queue"
DATABASE = "search_indexer"
MIGRATIONS: Sequence[Migration] = ()


class SearchIndexer:
    def __init__(self, products: pb_product.ProductServiceStub, index: SearchIndex) -> None:
        self.products = products
        self.index = index

    async def on_product_event(self, event: Event, scope: EffectScope) -> None:
        product_id = product_id_of(event)
        product = await current_product(self.products, product_id, scope)
        if product is None:
            await self.index.remove(product_id)
        else:
            await self.index.upsert(snapshot_from_pb(product))

    def handlers(self) -> dict[str, Handler]:
        # An effect: a gRPC read and another database; the snapshot upsert is idempotent.
        return dict.fromkeys(PRODUCT_EVENTS, Handler(effect=self.on_product_event))


@asynccontextmanager
async def subscription(env: ServiceEnv) -> AsyncIterator[Subscription]:
    async with open_database(env.config.storage, "search", INDEX_MIGRATIONS) as index_db:
        indexer = SearchIndexer(
            env.clients.stub(pb_product.ProductServiceStub, "product"),
            open_search_index(index_db),
        )
        yield Subscription(
            name="search",
            queue=QUEUE,
            database=DATABASE,
            migrations=MIGRATIONS,
            handlers=indexer.handlers(),
        )
