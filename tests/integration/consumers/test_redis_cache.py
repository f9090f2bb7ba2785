"""The Redis product cache: shared entries, TTL, and no stale store after invalidation."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import CacheConfig
from ec_recommend.platform.cache import open_product_cache
from tests.conftest import REDIS_URL, require_service, wait_for

pytestmark = pytest.mark.asyncio


def product(pid: str, price: int) -> bytes:
    """An entry: the cache holds opaque bytes (the gateway's rendered JSON)."""
    return bytes(
        pb.Product(id=pid, name="n", base_price=pb_common.Money(amount=price, currency="JPY"))
    )


def price(entry: bytes) -> int:
    return pb.Product.parse(entry).base_price.amount


@pytest.fixture(autouse=True)
def redis_up() -> None:
    require_service(REDIS_URL, 6379, "Redis")


async def test_two_processes_share_entries_and_invalidations() -> None:
    settings = CacheConfig(redis_url=REDIS_URL, ttl=60)
    pid = str(uuid.uuid4())
    loads = 0

    async def load() -> bytes:
        nonlocal loads
        loads += 1
        return product(pid, 100 * loads)

    async with open_product_cache(settings) as one, open_product_cache(settings) as two:
        assert price(await one.read_through(pid, load)) == 100
        assert price(await two.read_through(pid, load)) == 100  # shared hit
        await two.invalidate(pid)
        assert price(await one.read_through(pid, load)) == 200
        assert loads == 2


async def test_entries_expire_after_the_ttl() -> None:
    pid = str(uuid.uuid4())
    prices = iter([1, 2])

    async def load() -> bytes:
        return product(pid, next(prices))

    async with open_product_cache(CacheConfig(redis_url=REDIS_URL, ttl=0.2)) as cache:
        assert price(await cache.read_through(pid, load)) == 1

        async def expired() -> bool:
            return price(await cache.read_through(pid, load)) == 2

        await wait_for(expired, timeout=5, interval=0.05)


async def test_a_load_racing_an_invalidation_is_not_stored() -> None:
    pid = str(uuid.uuid4())
    loading, release = asyncio.Event(), asyncio.Event()

    async def slow_old_value() -> bytes:
        loading.set()
        await release.wait()
        return product(pid, 100)

    async def fresh() -> bytes:
        return product(pid, 300)

    async with open_product_cache(CacheConfig(redis_url=REDIS_URL, ttl=60)) as cache:
        reader = asyncio.create_task(cache.read_through(pid, slow_old_value))
        await loading.wait()
        await cache.invalidate(pid)
        release.set()
        assert price(await reader) == 100
        assert price(await cache.read_through(pid, fresh)) == 300
