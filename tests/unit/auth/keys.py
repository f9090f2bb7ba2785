"""RSA keys, token minting and a JWKS server for the auth tests."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt

ISSUER = "https://cognito-idp.ap-northeast-1.amazonaws.com/ap-northeast-1_TestPool"
CLIENT_ID = "test-app-client"
KID = "key-1"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: bytes
    public_pem: bytes

    @classmethod
    def generate(cls, kid: str = KID) -> SigningKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(
            kid=kid,
            private_pem=private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            public_pem=private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )

    def public_jwk(self) -> dict[str, Any]:
        entry = jwk.construct(self.public_pem, algorithm="RS256").to_dict()
        entry.update(kid=self.kid, use="sig", alg="RS256")
        return {name: (v.decode() if isinstance(v, bytes) else v) for name, v in entry.items()}

    def sign(
        self,
        claims: Mapping[str, Any],
        *,
        kid: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        return jwt.encode(
            dict(claims),
            self.private_pem,
            algorithm="RS256",
            headers={"kid": kid or self.kid, **(headers or {})},
        )


def id_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "0f7c-user-sub",
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "token_use": "id",
        "email": "hanako@example.com",
        "cognito:groups": ["seller"],
        "custom:seller_id": "seller-123",
        "iat": now,
        "auth_time": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def access_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "0f7c-user-sub",
        "iss": ISSUER,
        "client_id": CLIENT_ID,
        "token_use": "access",
        "username": "0f7c-user-sub",
        "cognito:groups": ["customer"],
        "scope": "aws.cognito.signin.user.admin",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand, for headers a library would refuse to produce."""
    return ".".join(
        (b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature))
    )


@dataclass
class JwksServer:
    """Serves ``keys`` as a JWKS document and counts the requests."""

    keys: list[dict[str, Any]]
    url: str = ""
    hits: int = 0
    status: int = 200
    extra: dict[str, Any] = field(default_factory=dict)

    async def _serve(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.json_response({"keys": self.keys, **self.extra}, status=self.status)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[JwksServer]:
        app = web.Application()
        app.router.add_get("/pool/.well-known/jwks.json", self._serve)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/pool/.well-known/jwks.json"
        try:
            yield self
        finally:
            await runner.cleanup()
