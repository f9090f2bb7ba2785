"""With the real TokenVerifier (moto's JWKS): every bad token is a 401 before any
service is called, counted by the stubs the gateway asks for."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ec_recommend.config import AuthConfig
from ec_recommend.edge.gateway.app import GatewaySetup, create_app
from ec_recommend.platform.auth.cognito import open_accounts
from ec_recommend.platform.auth.provision import provision_user_pool
from ec_recommend.platform.auth.verifier import TokenVerifier
from ec_recommend.runtime.host import host_services
from ec_recommend.runtime.local_aws import LocalAws
from tests.e2e.test_token_attacks import (
    _claims,
    hs256_with_public_key,
    other_key_pem,
    sign,
    unsigned,
)
from tests.integration.gateway.conftest import CountingClients, gateway_config

pytestmark = pytest.mark.asyncio


@asynccontextmanager
async def _gateway(
    local_aws: LocalAws, tmp_path: Path
) -> AsyncIterator[tuple[TestClient, CountingClients, str]]:  # type: ignore[type-arg]
    pool = await provision_user_pool(local_aws, f"attacks-{uuid.uuid4().hex[:8]}")
    auth = pool.apply(AuthConfig(auto_confirm=True))
    config = gateway_config(tmp_path)
    async with open_accounts(auth) as accounts:
        await accounts.signup("victim@example.com", "Passw0rd-victim")
        tokens = await accounts.login("victim@example.com", "Passw0rd-victim")
    async with (
        CountingClients({}, pool_size=1, timeout=5.0) as clients,
        host_services(config, ("user",), clients=clients),
    ):
        app = create_app(
            GatewaySetup(
                config=config,
                verifier=lambda: TokenVerifier.from_config(auth),
                clients=clients,
            )
        )
        async with TestClient(TestServer(app)) as http:
            yield http, clients, tokens.id_token


async def test_forged_tokens_never_reach_a_service(local_aws: LocalAws, tmp_path: Path) -> None:
    async with _gateway(local_aws, tmp_path) as (http, clients, id_token):
        claims = _claims(id_token)
        ok = await http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {id_token}"})
        assert ok.status == 200
        now = int(time.time())
        attacks = {
            "malformed": "not.a.jwt",
            "alg none": unsigned(claims),
            "HS256 keyed with the public key": hs256_with_public_key(claims),
            "wrong signature": sign(claims, key=other_key_pem()),
            "expired": sign({**claims, "iat": now - 7200, "exp": now - 3600}),
            "wrong issuer": sign({**claims, "iss": "https://evil.example.com/pool"}),
            "wrong audience": sign({**claims, "aud": "another-client"}),
            "wrong token_use": sign({**claims, "token_use": "refresh"}),
            "unknown kid": sign(claims, kid="no-such-kid"),
        }
        before = clients.stubs
        for name, token in attacks.items():
            for method, path in (("PUT", "/api/v1/users/me/profile"), ("GET", "/api/v1/products")):
                response = await http.request(
                    method,
                    path,
                    json={"display_name": name} if method == "PUT" else None,
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.status == 401, (name, path, await response.text())
                assert (await response.json())["code"] == "UNAUTHORIZED"
        missing = await http.put("/api/v1/users/me/profile", json={"display_name": "x"})
        assert missing.status == 401
        assert clients.stubs == before, "a refused request reached a service"
