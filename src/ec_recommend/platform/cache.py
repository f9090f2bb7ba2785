"""Product read cache: in-process (TTL + LRU) by default, Redis when configured.

An entry is the response body the gateway serves for the product (rendered
JSON bytes): a hit is answered as it is, without parsing a protobuf and
rendering it again. The cache itself treats entries as opaque bytes.

Reads go through ``ProductCache.read_through``; ``peek`` answers a hit
without awaiting anything (in-process only). Product events invalidate
entries (the cache-invalidation consumer), so a change is visible on the next
read after its event is handled. The TTL bounds staleness where an
invalidation cannot reach (another process's in-process cache).

A read that loads while an invalidation happens must not store what it
loaded (it may be the old product): both implementations store only if no
invalidation of that key happened since the load began.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from ec_recommend.config import CacheConfig

Loader = Callable[[], Awaitable[bytes]]

# Entries are rendered JSON; the "ec:product:" keys of older versions held
# protobuf and are left to expire.
KEY_PREFIX = "ec:product-json:"
VERSION_PREFIX = "ec:product-version:"
VERSION_TTL = 86_400  # outlives any load in flight


class ProductCache(Protocol):
    def peek(self, product_id: str) -> bytes | None:
        """A fresh entry held in this process, else None (then use read_through)."""
        ...

    async def read_through(self, product_id: str, load: Loader) -> bytes: ...

    async def invalidate(self, product_id: str) -> None: ...


class PassThrough:
    """No caching: for a gateway whose cache no product event would invalidate."""

    def peek(self, product_id: str) -> bytes | None:
        return None

    async def read_through(self, product_id: str, load: Loader) -> bytes:
        return await load()

    async def invalidate(self, product_id: str) -> None:
        return None


class LocalProductCache:
    """This process's cache: at most ``max_entries`` products for ``ttl`` seconds."""

    def __init__(
        self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._invalidations: dict[str, int] = {}
        self.hits = 0
        self.misses = 0
        # Told of every invalidation made here, so it can reach the other
        # gateway processes' caches (gateway/workers.py).
        self.listeners: list[Callable[[str], None]] = []

    def get(self, product_id: str) -> bytes | None:
        entry = self._entries.get(product_id)
        if entry is None or entry[0] <= self._clock():
            self._entries.pop(product_id, None)
            return None
        self._entries.move_to_end(product_id)
        return entry[1]

    def put(self, product_id: str, body: bytes) -> None:
        self._entries[product_id] = (self._clock() + self.ttl, body)
        self._entries.move_to_end(product_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def peek(self, product_id: str) -> bytes | None:
        cached = self.get(product_id)
        if cached is not None:
            self.hits += 1
        return cached

    async def read_through(self, product_id: str, load: Loader) -> bytes:
        cached = self.peek(product_id)
        if cached is not None:
            return cached
        self.misses += 1
        seen = self._invalidations.get(product_id, 0)
        body = await load()
        if self._invalidations.get(product_id, 0) == seen:
            self.put(product_id, body)
        return body

    async def invalidate(self, product_id: str) -> None:
        self.drop(product_id)
        for listener in self.listeners:
            listener(product_id)

    def drop(self, product_id: str) -> None:
        """Invalidate without telling the listeners: for an invalidation that
        was made elsewhere and reached this process."""
        self._entries.pop(product_id, None)
        # Counted only while a load could be in flight; bounded like the entries.
        self._invalidations[product_id] = self._invalidations.get(product_id, 0) + 1
        if len(self._invalidations) > self.max_entries:
            self._invalidations.pop(next(iter(self._invalidations)))


# Store the loaded value only if the key's version is what it was before loading.
_SET_IF_UNCHANGED = """
local current = redis.call('GET', KEYS[2]) or ''
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""


class RedisProductCache:
    """Shared by every gateway process; invalidation deletes the key for all."""

    def __init__(self, redis: Any, ttl: float) -> None:
        self._redis = redis
        self.ttl_ms = max(1, int(ttl * 1000))
        self._set_if_unchanged = redis.register_script(_SET_IF_UNCHANGED)

    def peek(self, product_id: str) -> bytes | None:
        return None  # every read asks Redis

    async def read_through(self, product_id: str, load: Loader) -> bytes:
        key, version_key = KEY_PREFIX + product_id, VERSION_PREFIX + product_id
        cached, version = await self._redis.mget(key, version_key)
        if cached is not None:
            return bytes(cached)
        body = await load()
        await self._set_if_unchanged(
            keys=[key, version_key], args=[version or b"", body, self.ttl_ms]
        )
        return body

    async def invalidate(self, product_id: str) -> None:
        version_key = VERSION_PREFIX + product_id
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(version_key)
            pipe.expire(version_key, VERSION_TTL)
            pipe.delete(KEY_PREFIX + product_id)
            await pipe.execute()


# One in-process cache per process and settings: the gateway reads through it
# and the cache-invalidation consumer, when hosted in the same process,
# invalidates the very same entries.
_LOCAL: dict[tuple[float, int], LocalProductCache] = {}


def process_local_cache(config: CacheConfig) -> LocalProductCache:
    key = (config.ttl, config.max_entries)
    if key not in _LOCAL:
        _LOCAL[key] = LocalProductCache(config.ttl, config.max_entries)
    return _LOCAL[key]


@asynccontextmanager
async def open_product_cache(
    config: CacheConfig, *, invalidated: bool = True
) -> AsyncIterator[ProductCache]:
    """Redis when ``config.redis_url`` is set, else this process's local cache.

    ``invalidated=False`` (no product events flow, so nothing would ever
    invalidate an entry) gives a pass-through: serving up to a TTL of stale
    products is not worth the saved call.
    """
    if not invalidated:
        yield PassThrough()
        return
    if not config.redis_url:
        yield process_local_cache(config)
        return
    from redis.asyncio import Redis

    redis = Redis.from_url(config.redis_url)
    try:
        yield RedisProductCache(redis, config.ttl)
    finally:
        await redis.aclose()
