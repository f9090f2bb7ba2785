"""``ec-recommend up --workers 2``: two gateway processes on one port.

Its own ``up`` (the session's runs one gateway process). Every request goes
on a fresh connection, so SO_REUSEPORT spreads them over both processes, and
from a fresh client address, so the anonymous budget (halved per process
with the in-memory limiter) is not what the test measures.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ec_recommend.client import Client
from tests.conftest import wait_for
from tests.e2e.conftest import PASSWORD, RunningSystem, fresh_address, up_process

pytestmark = pytest.mark.asyncio

TRIES = 40  # fresh connections: all on one process with probability 2**-39


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    # only an invalidation can make a change visible in time
    with up_process(
        tmp_path_factory.mktemp("ec-up-workers"),
        "--no-demo",
        "--workers",
        "2",
        env={"EC_CACHE_TTL": "600"},
    ) as running:
        yield running


async def _fresh(method: str, url: str, token: str = "", body: Any = None) -> Any:
    connector = aiohttp.TCPConnector(force_close=True)
    headers = {"X-Forwarded-For": fresh_address()}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(method, url, headers=headers, json=body) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def _fresh_get(url: str) -> Any:
    return await _fresh("GET", url)


def _worker_pids(parent: int) -> set[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return {int(pid) for pid in children}


async def test_requests_land_on_both_gateway_processes(two_workers: RunningSystem) -> None:
    url = two_workers.gateway_url
    pids = {(await _fresh_get(f"{url}/healthz"))["pid"] for _ in range(TRIES)}
    assert len(pids) == 2
    assert two_workers.process.pid in pids
    assert pids - {two_workers.process.pid} <= _worker_pids(two_workers.process.pid)


async def test_a_product_change_reaches_the_cache_of_both(two_workers: RunningSystem) -> None:
    url = two_workers.gateway_url
    seller = Client(url, headers={"X-Forwarded-For": fresh_address()})
    try:
        email = f"seller-{uuid.uuid4().hex[:12]}@example.com"
        await seller.signup(email, PASSWORD, display_name="workers", role="seller")
        await seller.login(email, PASSWORD)
        product = await seller.create_product("Tea bowl", 2400, 3)
        path = f"{url}/api/v1/products/{product['id']}"

        async def names() -> set[str]:
            return {(await _fresh_get(path))["name"] for _ in range(TRIES)}

        assert seller.token
        # Each change is made by whichever process takes its connection: one
        # of them is not that process, so it learns of the change only by the
        # forwarded invalidation (the TTL is 10 minutes). Six tries: a change
        # that does not travel is missed with probability 2**-6.
        for n in range(6):
            assert await names() == {f"Tea bowl {n - 1}" if n else "Tea bowl"}  # cached in both
            await _fresh("PUT", path, seller.token, {"name": f"Tea bowl {n}"})

            async def fresh_everywhere(name: str = f"Tea bowl {n}") -> bool:
                return await names() == {name}

            await wait_for(fresh_everywhere, timeout=10)
    finally:
        await seller.close()
