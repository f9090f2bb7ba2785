"""The in-process product cache: TTL, LRU bound, and no stale store after invalidation."""

from __future__ import annotations

import asyncio

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.platform.cache import LocalProductCache

pytestmark = pytest.mark.asyncio


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def product(pid: str, price: int) -> bytes:
    """An entry: the cache holds opaque bytes (the gateway's rendered JSON)."""
    return bytes(
        pb.Product(id=pid, name="n", base_price=pb_common.Money(amount=price, currency="JPY"))
    )


def price(entry: bytes) -> int:
    return pb.Product.parse(entry).base_price.amount


class Loader:
    def __init__(self) -> None:
        self.price = 100
        self.calls = 0

    async def __call__(self) -> bytes:
        self.calls += 1
        return product("p", self.price)


async def test_hits_until_the_ttl_expires() -> None:
    clock, load = Clock(), Loader()
    cache = LocalProductCache(ttl=10, max_entries=10, clock=clock)
    assert price(await cache.read_through("p", load)) == 100
    load.price = 200
    assert price(await cache.read_through("p", load)) == 100
    clock.now = 10.5
    assert price(await cache.read_through("p", load)) == 200
    assert load.calls == 2 and (cache.hits, cache.misses) == (1, 2)


async def test_peek_answers_a_fresh_entry_without_loading() -> None:
    clock, load = Clock(), Loader()
    cache = LocalProductCache(ttl=10, max_entries=10, clock=clock)
    assert cache.peek("p") is None
    entry = await cache.read_through("p", load)
    assert cache.peek("p") == entry
    clock.now = 10.5
    assert cache.peek("p") is None and load.calls == 1


async def test_invalidation_makes_the_next_read_fresh() -> None:
    load = Loader()
    cache = LocalProductCache(ttl=60, max_entries=10, clock=Clock())
    await cache.read_through("p", load)
    load.price = 300
    await cache.invalidate("p")
    assert price(await cache.read_through("p", load)) == 300


async def test_least_recently_used_entry_is_evicted() -> None:
    cache = LocalProductCache(ttl=60, max_entries=2, clock=Clock())
    cache.put("a", product("a", 1))
    cache.put("b", product("b", 2))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", product("c", 3))
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None


async def test_a_load_racing_an_invalidation_is_not_stored() -> None:
    cache = LocalProductCache(ttl=60, max_entries=10, clock=Clock())
    loading, release = asyncio.Event(), asyncio.Event()

    async def slow_old_value() -> bytes:
        loading.set()
        await release.wait()
        return product("p", 100)  # read before the change

    reader = asyncio.create_task(cache.read_through("p", slow_old_value))
    await loading.wait()
    await cache.invalidate("p")  # the change's event arrives meanwhile
    release.set()
    assert price(await reader) == 100
    assert cache.get("p") is None
