"""The cache-invalidation subscriber (cache-invalidation-queue).

Every product event drops the product from the read cache. With Redis
configured this is one shared cache and any process may run this consumer.
With the in-process cache it must run in the gateway's process (``up`` does)
to reach the gateway's entries; other gateway processes fall back to the TTL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ec_recommend.consumers.catalogue import PRODUCT_EVENTS, product_id_of
from ec_recommend.platform.cache import ProductCache, open_product_cache
from ec_recommend.platform.events.consumer import EffectScope, Handler, Subscription
from ec_recommend.platform.events.envelope import Event
from ec_recommend.platform.storage import Migration
from ec_recommend.runtime.registry import ServiceEnv

QUEUE = "cache-invalidation-queue"
DATABASE = "cache_invalidation"
MIGRATIONS: Sequence[Migration] = ()


class CacheInvalidator:
    def __init__(self, cache: ProductCache) -> None:
        self.cache = cache

    async def on_product_event(self, event: Event, scope: EffectScope) -> None:
        await self.cache.invalidate(product_id_of(event))

    def handlers(self) -> dict[str, Handler]:
        # An effect: the cache may be Redis, and dropping an entry twice is harmless.
        return dict.fromkeys(PRODUCT_EVENTS, Handler(effect=self.on_product_event))


@asynccontextmanager
async def subscription(env: ServiceEnv) -> AsyncIterator[Subscription]:
    async with open_product_cache(env.config.cache) as cache:
        yield Subscription(
            name="cache-invalidation",
            queue=QUEUE,
            database=DATABASE,
            migrations=MIGRATIONS,
            handlers=CacheInvalidator(cache).handlers(),
        )
