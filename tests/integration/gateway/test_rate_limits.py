"""Rate limits through the gateway; the Redis backend shared by two gateways."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, require_service
from tests.integration.gateway.conftest import GatewayUnderTest, gateway_config, running_gateway

pytestmark = pytest.mark.asyncio


def _fake_address() -> str:
    n = uuid.uuid4().int
    return f"10.{n & 255}.{(n >> 8) & 255}.{(n >> 16) & 255}"


async def test_anonymous_limit_and_proxy_address(tmp_path: Path) -> None:
    config = gateway_config(tmp_path, rate_limit_anonymous=5, trusted_proxies=("127.0.0.1",))
    async with running_gateway(config) as gateway:
        http = gateway.http
        headers = {"X-Forwarded-For": "198.51.100.1"}
        for _ in range(5):
            assert (await http.get("/api/v1/products", headers=headers)).status == 200
        limited = await http.get("/api/v1/products", headers=headers)
        assert limited.status == 429
        body = await limited.json()
        assert body["code"] == "RATE_LIMITED"
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.headers["X-Request-ID"]
        # another client behind the same proxy has its own budget
        other = await http.get("/api/v1/products", headers={"X-Forwarded-For": "198.51.100.2"})
        assert other.status == 200
        # authenticated callers are counted by user, in their own tier
        authed = await http.get(
            "/api/v1/products", headers={**headers, **GatewayUnderTest.auth("alice")}
        )
        assert authed.status == 200
        assert authed.headers["RateLimit-Limit"] == "1000"
        # probes are not limited
        assert (await http.get("/healthz", headers=headers)).status == 200


async def test_redis_backend_shares_one_budget_between_two_gateways(tmp_path: Path) -> None:
    require_service(REDIS_URL, 6379, "Redis")
    config = gateway_config(
        tmp_path,
        rate_limit_anonymous=10,
        rate_limit_backend="redis",
        redis_url=REDIS_URL,
        trusted_proxies=("127.0.0.1",),
    )
    headers = {"X-Forwarded-For": _fake_address()}
    async with running_gateway(config) as first, running_gateway(config, services=()) as second:
        statuses = []
        for n in range(12):
            gateway = first if n % 2 == 0 else second
            response = await gateway.http.get("/api/v1/openapi.json", headers=headers)
            statuses.append(response.status)
        assert statuses == [200] * 10 + [429, 429]
        remaining = await first.http.get(
            "/api/v1/openapi.json", headers={"X-Forwarded-For": _fake_address()}
        )
        assert remaining.headers["RateLimit-Remaining"] == "9"


async def test_redis_outage_lets_requests_through(tmp_path: Path) -> None:
    config = gateway_config(tmp_path, rate_limit_backend="redis", redis_url="redis://127.0.0.1:1/0")
    async with running_gateway(config, services=()) as gateway:
        response = await gateway.http.get("/api/v1/openapi.json")
        assert response.status == 200
