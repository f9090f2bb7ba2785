"""GET /api/v1/products/{id} from the read cache: the rendered body, no service call,
and every edge behaviour (limits, request ids, input checks, activity, metrics) kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ec_recommend.config import EventsConfig
from ec_recommend.platform.cache import LocalProductCache
from ec_recommend.platform.events.activity import ActivitySender
from ec_recommend.platform.events.envelope import decode
from tests.integration.gateway.conftest import GatewayUnderTest, gateway_config, running_gateway

pytestmark = pytest.mark.asyncio

auth = GatewayUnderTest.auth

KETTLE = {
    "name": "Kettle",
    "base_price": {"amount": 4280, "currency": "JPY"},
    "stock_quantity": 5,
}


@pytest_asyncio.fixture
async def cached(tmp_path: Path) -> AsyncIterator[tuple[GatewayUnderTest, LocalProductCache]]:
    cache = LocalProductCache(ttl=300, max_entries=100)
    config = gateway_config(tmp_path, rate_limit_anonymous=5)
    async with running_gateway(config, product_cache=cache) as running:
        yield running, cache


async def _create(gateway: GatewayUnderTest) -> str:
    created = await gateway.http.post("/api/v1/products", json=KETTLE, headers=auth("seller-a"))
    assert created.status == 201, await created.text()
    product_id: str = (await created.json())["id"]
    return product_id


async def test_a_hit_calls_no_service_and_keeps_the_edge_headers(
    cached: tuple[GatewayUnderTest, LocalProductCache],
) -> None:
    gateway, cache = cached
    product_id = await _create(gateway)
    path = f"/api/v1/products/{product_id}"

    first = await gateway.http.get(path)
    calls = gateway.clients.stubs
    second = await gateway.http.get(path, headers={"X-Request-ID": "req-42"})
    assert (first.status, second.status) == (200, 200)
    assert gateway.clients.stubs == calls  # answered from the cache
    assert (cache.hits, cache.misses) == (1, 1)
    assert await second.read() == await first.read()
    assert (await second.json())["name"] == "Kettle"
    assert second.headers["Content-Type"].startswith("application/json")
    assert second.headers["X-Request-ID"] == "req-42"
    assert second.headers["RateLimit-Limit"] == "5"
    assert (
        int(second.headers["RateLimit-Remaining"]) == int(first.headers["RateLimit-Remaining"]) - 1
    )


async def test_the_rate_limit_applies_to_hits(
    cached: tuple[GatewayUnderTest, LocalProductCache],
) -> None:
    gateway, cache = cached
    path = f"/api/v1/products/{await _create(gateway)}"
    statuses = [(await gateway.http.get(path)).status for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    refused = await gateway.http.get(path)
    assert refused.status == 429 and "Retry-After" in refused.headers
    assert (await refused.json())["code"] == "RATE_LIMITED"
    assert cache.hits == 4


async def test_input_is_checked_before_the_cache_answers(
    cached: tuple[GatewayUnderTest, LocalProductCache],
) -> None:
    gateway, _ = cached
    product_id = await _create(gateway)
    path = f"/api/v1/products/{product_id}"
    assert (await gateway.http.get(path)).status == 200  # now cached
    unknown = await gateway.http.get(path, params={"x": "1"})
    assert unknown.status == 400 and (await unknown.json())["code"] == "INVALID_REQUEST"
    bad_key = await gateway.http.get(path, headers={"Idempotency-Key": "has space"})
    assert bad_key.status == 400
    # another spelling of the same id misses the cache and is served canonically
    upper = await gateway.http.get(path.upper().replace("/API/V1/PRODUCTS", "/api/v1/products"))
    assert upper.status == 200 and (await upper.json())["id"] == product_id


async def test_a_write_through_the_gateway_invalidates_its_entry(
    cached: tuple[GatewayUnderTest, LocalProductCache],
) -> None:
    gateway, _ = cached
    product_id = await _create(gateway)
    path = f"/api/v1/products/{product_id}"
    assert (await (await gateway.http.get(path)).json())["name"] == "Kettle"
    renamed = await gateway.http.put(path, json={"name": "Kettle 2"}, headers=auth("seller-a"))
    assert renamed.status == 200
    assert (await (await gateway.http.get(path)).json())["name"] == "Kettle 2"


async def test_hits_count_in_metrics_by_route_template(
    cached: tuple[GatewayUnderTest, LocalProductCache],
) -> None:
    gateway, _ = cached
    path = f"/api/v1/products/{await _create(gateway)}"
    for _ in range(3):
        assert (await gateway.http.get(path)).status == 200
    text = await (await gateway.http.get("/metrics")).text()
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("http_request_total{")
        and 'endpoint="/api/v1/products/{product_id}"' in line
        and 'method="GET"' in line
        and 'status="200"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) >= 3


async def test_views_are_recorded_on_hits_and_misses(tmp_path: Path) -> None:
    activity = ActivitySender(EventsConfig())  # not started: records stay buffered
    config = gateway_config(tmp_path)
    cache = LocalProductCache(ttl=300, max_entries=100)
    async with running_gateway(config, product_cache=cache, activity=activity) as gateway:
        product_id = await _create(gateway)
        path = f"/api/v1/products/{product_id}"
        assert (await gateway.http.get(path)).status == 200  # miss
        assert (await gateway.http.get(path, headers=auth("alice"))).status == 200  # hit
        assert (await gateway.http.get("/api/v1/products/not-an-id")).status == 400
    views = [decode(body).data for body in activity.encode_pending()]
    assert [(v.activity, v.product_id) for v in views] == [("product_view", product_id)] * 2
    assert views[0].user_id == ""  # anonymous
    assert views[1].user_id != ""  # alice's user id, on the cache hit


async def test_a_hit_sets_up_no_deadline_or_timeout(
    cached: tuple[GatewayUnderTest, LocalProductCache], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ec_recommend.edge.gateway import app as gateway_app

    timeouts: list[float] = []
    real_timeout = gateway_app.asyncio.timeout

    def counting_timeout(delay: float) -> object:
        timeouts.append(delay)
        return real_timeout(delay)

    gateway, _ = cached
    path = f"/api/v1/products/{await _create(gateway)}"
    monkeypatch.setattr(gateway_app.asyncio, "timeout", counting_timeout)
    assert (await gateway.http.get(path)).status == 200  # miss: the service call has a budget
    after_miss = len(timeouts)
    assert after_miss >= 1
    assert (await gateway.http.get(path)).status == 200  # hit
    assert len(timeouts) == after_miss
