"""No unit of stock is held for nobody: short client deadlines, a retry storm
on one Idempotency-Key, and kill -9 mid-checkout, against a running ``up``.

The system runs with short leases and a short payment timeout, so the test
can wait (by polling) for every lease to run out; then the stock invariant
must hold: ``available + reserved + sold`` unchanged, and ``reserved`` equal
to the units of PENDING_PAYMENT orders.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio

from ec_recommend.client import Client
from tests.chaos.invariants import check_stock_eventually, order_count, stock_levels
from tests.chaos.running_up import UpProcess, running_up
from tests.conftest import POSTGRES_URL, _drop_schemas, require_service

pytestmark = [pytest.mark.chaos, pytest.mark.asyncio]

PASSWORD = "Passw0rd-chaos"
LEASE = 2.0
PAYMENT_TIMEOUT = 20.0
# Every lease, confirmed ones included, has run out by then, with room for a busy machine.
SETTLE_TIMEOUT = PAYMENT_TIMEOUT + LEASE + 30.0

SETTINGS = {
    "EC_RESERVATION_LEASE": str(LEASE),
    "EC_RESERVATION_SWEEP_INTERVAL": "0.5",
    "EC_PAYMENT_TIMEOUT": str(PAYMENT_TIMEOUT),
    "EC_ORDER_SWEEP_INTERVAL": "0.5",
}


@pytest.fixture
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    # One per scenario: units one scenario left held must not fail the next.
    with running_up(tmp_path_factory.mktemp("leases"), SETTINGS) as process:
        yield process


@pytest_asyncio.fixture
async def pg_up(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[UpProcess]:
    """The same system on PostgreSQL (truly concurrent writers), in its own schemas."""
    require_service(POSTGRES_URL, 5432, "PostgreSQL")
    prefix = f"c{uuid.uuid4().hex[:10]}_"
    settings = {
        **SETTINGS,
        "EC_DATABASE_URL": POSTGRES_URL,
        "EC_SCHEMA_PREFIX": prefix,
    }
    try:
        with running_up(tmp_path_factory.mktemp("leases-pg"), settings) as process:
            yield process
    finally:
        await _drop_schemas(prefix)


@pytest.fixture
def narrow_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    """One checkout at a time and none waiting: a burst must be shed."""
    settings = {**SETTINGS, "EC_CHECKOUT_CONCURRENCY": "1", "EC_CHECKOUT_QUEUE": "0"}
    with running_up(tmp_path_factory.mktemp("narrow"), settings) as process:
        yield process


@dataclass
class Shop:
    url: str
    session: aiohttp.ClientSession
    buyers: list[str]  # bearer tokens
    products: list[str]

    def basket(self) -> list[tuple[str, int]]:
        return [(p, random.randint(1, 2)) for p in random.sample(self.products, k=2)]

    async def create(
        self,
        token: str,
        *,
        key: str | None = None,
        deadline: float | None = None,
        basket: list[tuple[str, int]] | None = None,
    ) -> int:
        """One POST /orders; its status, or 0 when the connection failed."""
        return (await self.answer(token, key=key, deadline=deadline, basket=basket))[0]

    async def answer(
        self,
        token: str,
        *,
        key: str | None = None,
        deadline: float | None = None,
        basket: list[tuple[str, int]] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One POST /orders: status, headers and body (status 0: no connection)."""
        headers = {
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": key or uuid.uuid4().hex,
            "X-Forwarded-For": f"10.9.{random.randrange(256)}.{random.randrange(256)}",
        }
        if deadline is not None:
            headers["X-Request-Timeout"] = f"{deadline:.3f}"
        items = basket or self.basket()
        body = {"items": [{"product_id": p, "quantity": q} for p, q in items]}
        try:
            async with self.session.post(
                f"{self.url}/api/v1/orders", json=body, headers=headers
            ) as response:
                return response.status, dict(response.headers), await response.read()
        except aiohttp.ClientError:
            return 0, {}, b""


async def _account(url: str, role: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:12]}@example.com"
    async with Client(url, headers={"X-Forwarded-For": "10.8.0.1"}) as client:
        await client.signup(email, PASSWORD, display_name=role, role=role)
        tokens = await client.login(email, PASSWORD)
    return tokens.id_token


async def _shop(up: UpProcess) -> AsyncIterator[Shop]:
    seller = await _account(up.gateway_url, "seller")
    buyers = [await _account(up.gateway_url, "customer") for _ in range(4)]
    products = []
    async with Client(up.gateway_url, token=seller, headers={"X-Forwarded-For": "10.8.0.2"}) as c:
        for n in range(3):
            products.append((await c.create_product(f"Lease test {n}", 500, 400))["id"])
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield Shop(up.gateway_url, session, buyers, products)


@pytest_asyncio.fixture
async def shop(up: UpProcess) -> AsyncIterator[Shop]:
    async for opened in _shop(up):
        yield opened


@pytest_asyncio.fixture
async def pg_shop(pg_up: UpProcess) -> AsyncIterator[Shop]:
    async for opened in _shop(pg_up):
        yield opened


@pytest_asyncio.fixture
async def narrow_shop(narrow_up: UpProcess) -> AsyncIterator[Shop]:
    async for opened in _shop(narrow_up):
        yield opened


def _no_server_errors(statuses: list[int]) -> None:
    # 504 (the caller's own deadline) and 429/503 (shed) are answers; 500 is a bug.
    assert not [s for s in statuses if s >= 500 and s not in (503, 504)], statuses


async def test_short_deadlines_interleaved_with_normal_creates_hold_no_unit_for_nobody(
    up: UpProcess, shop: Shop
) -> None:
    await _short_deadlines_then_check(up, shop)


async def test_short_deadlines_on_postgresql_hold_no_unit_for_nobody(
    pg_up: UpProcess, pg_shop: Shop
) -> None:
    await _short_deadlines_then_check(pg_up, pg_shop)


async def _short_deadlines_then_check(up: UpProcess, shop: Shop) -> None:
    before = await stock_levels(up.storage)
    statuses: list[int] = []
    for wave in range(8):
        statuses += await asyncio.gather(
            *(
                shop.create(
                    shop.buyers[i % len(shop.buyers)],
                    deadline=random.uniform(0.01, 0.3) if i % 2 else None,
                )
                for i in range(wave * 25, wave * 25 + 25)
            )
        )
    _no_server_errors(statuses)
    assert 201 in statuses and 504 in statuses, statuses
    await check_stock_eventually(up.storage, before, timeout=SETTLE_TIMEOUT)


async def test_a_retry_storm_on_one_key_makes_at_most_one_order(up: UpProcess, shop: Shop) -> None:
    before = await stock_levels(up.storage)
    buyer = shop.buyers[0]
    # Read from the store: the storm's short deadlines may open the gateway's circuit.
    already = await order_count(up.storage)
    keys = [uuid.uuid4().hex for _ in range(5)]
    statuses: list[int] = []
    for key in keys:
        basket = shop.basket()
        statuses += await asyncio.gather(
            *(
                shop.create(
                    buyer,
                    key=key,
                    basket=basket,
                    deadline=random.uniform(0.01, 0.3) if i % 3 else None,
                )
                for i in range(30)
            )
        )
    _no_server_errors(statuses)
    assert await order_count(up.storage) - already <= len(keys)
    await check_stock_eventually(up.storage, before, timeout=SETTLE_TIMEOUT)


async def test_kill_9_mid_checkout_then_restart_leaves_no_unit_held_for_nobody(
    up: UpProcess, shop: Shop
) -> None:
    before = await stock_levels(up.storage)
    answered = 0
    under_way = asyncio.Event()

    async def buyer_loop(token: str) -> None:
        nonlocal answered
        for _ in range(40):
            if await shop.create(token) == 0:
                return  # the system is gone
            answered += 1
            if answered >= 15:
                under_way.set()

    load = [asyncio.create_task(buyer_loop(t)) for t in shop.buyers * 3]
    await asyncio.wait_for(under_way.wait(), timeout=60)
    up.kill9()  # mid-checkout: a dozen creates are in flight
    await asyncio.gather(*load)
    await asyncio.to_thread(up.start)  # same data directory
    await check_stock_eventually(up.storage, before, timeout=SETTLE_TIMEOUT)


async def test_a_burst_beyond_the_checkout_queue_is_shed_with_a_retry_hint(
    narrow_up: UpProcess, narrow_shop: Shop
) -> None:
    before = await stock_levels(narrow_up.storage)
    answers = await asyncio.gather(
        *(narrow_shop.answer(narrow_shop.buyers[i % 4]) for i in range(40))
    )
    statuses = [status for status, _, _ in answers]
    _no_server_errors(statuses)
    assert 201 in statuses
    # RESOURCE_EXHAUSTED (reason overloaded) at the edge: 503 with the gateway's
    # mapping of retry hints, 429 before it; either way with Retry-After.
    shed = [(s, h, b) for s, h, b in answers if s in (429, 503)]
    assert shed, statuses
    assert all(h.get("Retry-After", "").isdigit() for _, h, _ in shed)
    assert any(b"overloaded" in b for _, _, b in shed)
    # What was shed reserved nothing: reserved units are exactly the orders'.
    await check_stock_eventually(narrow_up.storage, before, timeout=SETTLE_TIMEOUT)
