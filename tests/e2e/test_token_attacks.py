"""Forged and unsuitable tokens get 401 at the gateway and change nothing.

Tokens are made from a real ID token's claims and re-signed: with moto's
own signing key (so only the altered claim is wrong), with another key, with
HS256 keyed by the public key, or with no signature at all.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import moto
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt

from ec_recommend import client as api
from tests.e2e.conftest import System

pytestmark = pytest.mark.asyncio

MOTO_KEY: dict[str, Any] = json.loads(
    gzip.decompress(
        (Path(moto.__file__).parent / "cognitoidp/resources/jwks-private.json.gz").read_bytes()
    )
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    return jwt.get_unverified_claims(token)


def sign(claims: dict[str, Any], *, kid: str | None = None, key: Any = None) -> str:
    return jwt.encode(
        claims, key or MOTO_KEY, algorithm="RS256", headers={"kid": kid or MOTO_KEY["kid"]}
    )


def unsigned(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": MOTO_KEY["kid"]}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def hs256_with_public_key(claims: dict[str, Any]) -> str:
    public = jwk.construct({k: MOTO_KEY[k] for k in ("kty", "n", "e")}, "RS256")
    pem = public.to_pem()
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": MOTO_KEY["kid"]}).encode())
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def other_key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


async def test_every_token_attack_is_401_and_changes_nothing(system: System) -> None:
    victim = await system.customer()
    await victim.update_profile(display_name="Original")
    assert victim.token is not None
    claims = _claims(victim.token)
    now = int(time.time())

    # the forging itself is faithful: moto's key over unchanged claims is accepted
    resigned = system.anonymous()
    resigned.token = sign(claims)
    assert (await resigned.me())["email"] == claims["email"]

    attacks: dict[str, str] = {
        "malformed": "not.a.jwt",
        "garbage": "x" * 40,
        "alg none": unsigned(claims),
        "HS256 keyed with the public key": hs256_with_public_key(claims),
        "wrong signature": sign(claims, key=other_key_pem()),
        "tampered payload": ".".join(
            [
                victim.token.split(".")[0],
                _b64(json.dumps({**claims, "email": "evil@example.com"}).encode()),
                victim.token.split(".")[2],
            ]
        ),
        "expired": sign({**claims, "iat": now - 7200, "exp": now - 3600}),
        "wrong issuer": sign({**claims, "iss": "https://cognito-idp.evil.example.com/pool"}),
        "wrong audience": sign({**claims, "aud": "some-other-client"}),
        "wrong token_use": sign({**claims, "token_use": "refresh"}),
        "unknown kid": sign(claims, kid="no-such-kid"),
    }
    for name, token in attacks.items():
        attacker = system.anonymous()
        attacker.token = token
        with pytest.raises(api.Unauthorized) as caught:
            await attacker.update_profile(display_name=f"hacked by {name}")
        assert caught.value.status == 401, name
        assert caught.value.request_id, name
        # an optional-auth route does not fall back to anonymous either
        with pytest.raises(api.Unauthorized):
            await attacker.list_products(page_size=1)

    missing = system.anonymous()
    with pytest.raises(api.Unauthorized):
        await missing.update_profile(display_name="hacked anonymously")
    assert (await victim.profile())["display_name"] == "Original"


async def test_another_up_does_not_take_this_ones_tokens(
    system: System, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.e2e.conftest import up_process

    customer = await system.customer()
    assert customer.token is not None
    with up_process(tmp_path_factory.mktemp("ec-up-other"), "--no-demo") as other:
        assert other.endpoints["cognito_user_pool_id"] != system.endpoints["cognito_user_pool_id"]
        async with api.Client(other.gateway_url) as stranger:
            stranger.token = customer.token
            with pytest.raises(api.Unauthorized):
                await stranger.me()


@pytest.mark.parametrize("fate", ["disabled", "deleted"])
async def test_an_account_gone_from_the_pool_stops_working_within_seconds(
    system: System, fate: str
) -> None:
    from aiobotocore.session import get_session

    email = f"gone-{fate}-{int(time.time() * 1000)}@example.com"
    user = await system.customer(email)
    assert (await user.me())["email"] == email
    async with get_session().create_client(
        "cognito-idp",
        region_name=system.endpoints["region"],
        endpoint_url=system.endpoints["aws_endpoint_url"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ) as cognito:
        pool = system.endpoints["cognito_user_pool_id"]
        if fate == "disabled":
            await cognito.admin_disable_user(UserPoolId=pool, Username=email)
        else:
            await cognito.admin_delete_user(UserPoolId=pool, Username=email)
    # the old token is unexpired; the gateway rechecks the account within its ttl (10 s)
    deadline = time.monotonic() + 20
    while True:
        try:
            await user.me()
        except api.Unauthorized:
            break
        assert time.monotonic() < deadline, f"a {fate} account still works"
        await asyncio.sleep(0.2)
