"""A gateway in front of real user and product services, with a test verifier.

Tokens here are opaque names mapped to AuthContexts: these tests are about
the gateway (routing, error model, identity propagation, limits), not about
JWT verification, which has its own tests and the end-to-end token attacks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from ec_recommend.config import Config, GatewayConfig, RpcConfig, StorageConfig
from ec_recommend.edge.gateway.app import AccountsFactory, GatewaySetup, create_app
from ec_recommend.edge.gateway.keys import ACTIVITY, PRODUCT_CACHE
from ec_recommend.platform import errors
from ec_recommend.platform.auth.context import AuthContext
from ec_recommend.platform.cache import ProductCache
from ec_recommend.platform.events.activity import ActivitySender
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.runtime.host import host_services

ACCOUNTS: dict[str, AuthContext] = {
    name: AuthContext(
        user_id=f"sub-{name}",
        email=f"{name}@example.com",
        roles=roles,
        seller_id=seller_id,
    )
    for name, roles, seller_id in (
        ("seller-a", ("seller",), "seller-a"),
        ("seller-b", ("seller",), "seller-b"),
        ("alice", ("customer",), None),
        ("bob", ("customer",), None),
        ("admin", ("admin",), None),
    )
}


class StaticVerifier:
    """Accepts exactly the tokens in ACCOUNTS; counts what it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    async def verify(self, token: str) -> AuthContext:
        self.calls += 1
        try:
            return ACCOUNTS[token]
        except KeyError:
            raise errors.Unauthenticated("invalid or expired token") from None


class CountingClients(ClientFactory):
    """A ClientFactory that counts the service stubs handed out (one per call)."""

    stubs: int = 0

    def stub(self, stub_type: Any, service: str) -> Any:
        self.stubs += 1
        return super().stub(stub_type, service)


@asynccontextmanager
async def _verifier(verifier: StaticVerifier) -> AsyncIterator[StaticVerifier]:
    yield verifier


@dataclass
class GatewayUnderTest:
    http: TestClient[Any, Any]
    clients: CountingClients
    verifier: StaticVerifier
    app: Any = None
    seen: list[str] = field(default_factory=list)

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def gateway_config(tmp_path: Path, **gateway: Any) -> Config:
    return Config(
        storage=StorageConfig(data_dir=tmp_path / "data"),
        rpc=RpcConfig(drain_timeout=2.0, default_timeout=5.0),
        gateway=replace(GatewayConfig(rate_limit_anonymous=10_000), **gateway),
    )


@asynccontextmanager
async def running_gateway(
    config: Config,
    services: Sequence[str] = ("user", "product"),
    accounts: AccountsFactory | None = None,
    *,
    product_cache: ProductCache | None = None,
    activity: ActivitySender | None = None,
) -> AsyncIterator[GatewayUnderTest]:
    """``product_cache`` replaces the pass-through a gateway without product
    events gets; ``activity`` (not started, so nothing is sent) records views."""
    verifier = StaticVerifier()
    async with (
        CountingClients({}, pool_size=1, timeout=config.rpc.default_timeout) as clients,
        host_services(config, services, clients=clients),
    ):
        app = create_app(
            GatewaySetup(
                config=config,
                verifier=lambda: _verifier(verifier),
                accounts=accounts,
                clients=clients,
                services=tuple(services),
            )
        )

        async def replace_resources(app: Any) -> None:
            if product_cache is not None:
                app[PRODUCT_CACHE] = product_cache
            if activity is not None:
                app[ACTIVITY] = activity

        app.on_startup.append(replace_resources)  # after create_app's own resources
        async with TestClient(TestServer(app)) as http:
            yield GatewayUnderTest(http=http, clients=clients, verifier=verifier, app=app)


@pytest_asyncio.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[GatewayUnderTest]:
    async with running_gateway(gateway_config(tmp_path)) as running:
        yield running
