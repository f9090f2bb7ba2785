"""TokenVerifier against every token attack, with a local key and JWKS server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from ec_recommend.platform import errors
from ec_recommend.platform.auth.verifier import TokenVerifier
from tests.unit.auth.keys import (
    CLIENT_ID,
    ISSUER,
    KID,
    JwksServer,
    SigningKey,
    access_claims,
    b64,
    id_claims,
    unsigned,
)

pytestmark = pytest.mark.asyncio


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return SigningKey.generate()


@pytest_asyncio.fixture
async def jwks(key: SigningKey) -> AsyncIterator[JwksServer]:
    async with JwksServer(keys=[key.public_jwk()]).running() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def verifier(jwks: JwksServer, clock: FakeClock) -> AsyncIterator[TokenVerifier]:
    async with TokenVerifier(
        jwks_url=jwks.url, issuer=ISSUER, client_id=CLIENT_ID, refresh_interval=30, clock=clock
    ) as opened:
        yield opened


async def rejected(verifier: TokenVerifier, token: object) -> errors.Unauthenticated:
    with pytest.raises(errors.Unauthenticated) as raised:
        await verifier.verify(token)  # type: ignore[arg-type]
    assert raised.value.message == "invalid or expired token"  # one answer for every attack
    return raised.value


async def test_id_token_gives_the_seed_auth_context(
    verifier: TokenVerifier, key: SigningKey
) -> None:
    context = await verifier.verify(key.sign(id_claims()))
    assert context.user_id == "0f7c-user-sub"
    assert context.email == "hanako@example.com"
    assert context.roles == ("seller",)
    assert context.seller_id == "seller-123"


async def test_access_token_is_accepted_without_email_or_seller_id(
    verifier: TokenVerifier, key: SigningKey
) -> None:
    context = await verifier.verify(key.sign(access_claims()))
    assert context.user_id == "0f7c-user-sub"
    assert context.email == ""
    assert context.seller_id is None
    assert context.roles == ("customer",)


async def test_access_token_cannot_smuggle_a_seller_id(
    verifier: TokenVerifier, key: SigningKey
) -> None:
    context = await verifier.verify(key.sign(access_claims(**{"custom:seller_id": "forged"})))
    assert context.seller_id is None


async def test_no_groups_means_no_roles(verifier: TokenVerifier, key: SigningKey) -> None:
    context = await verifier.verify(key.sign(id_claims(**{"cognito:groups": None})))
    assert context.roles == ()


@pytest.mark.parametrize("token", ["", None, 42, "x" * 20_000])
async def test_missing_or_oversized_token(verifier: TokenVerifier, token: object) -> None:
    await rejected(verifier, token)


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b", "a.b.c", "a.b.c.d", "....", "eyJhbGciOiJSUzI1NiJ9.e30.", "ü.ü.ü"],
)
async def test_malformed_token(verifier: TokenVerifier, token: str) -> None:
    await rejected(verifier, token)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
async def test_alg_none(verifier: TokenVerifier, alg: str) -> None:
    await rejected(verifier, unsigned({"alg": alg, "kid": KID, "typ": "JWT"}, id_claims()))


async def test_hs256_signed_with_the_public_key(
    verifier: TokenVerifier, key: SigningKey, jwks: JwksServer
) -> None:
    header = {"alg": "HS256", "kid": KID, "typ": "JWT"}
    claims = id_claims()
    first_two = unsigned(header, claims).rsplit(".", 1)[0]
    for secret in (key.public_pem, key.public_pem.strip()):
        signature = hmac.new(secret, first_two.encode(), hashlib.sha256).digest()
        await rejected(verifier, f"{first_two}.{b64(signature)}")


async def test_rs256_header_with_an_hmac_signature(
    verifier: TokenVerifier, key: SigningKey
) -> None:
    # The header claims RS256, but the signature is an HMAC over the public key.
    first_two = unsigned({"alg": "RS256", "kid": KID}, id_claims()).rsplit(".", 1)[0]
    signature = hmac.new(key.public_pem, first_two.encode(), hashlib.sha256).digest()
    await rejected(verifier, f"{first_two}.{b64(signature)}")


async def test_symmetric_key_in_the_jwks_is_never_used(
    jwks: JwksServer, key: SigningKey, clock: FakeClock
) -> None:
    jwks.keys = [{"kty": "oct", "kid": "sym", "k": b64(b"secret"), "alg": "HS256"}]
    async with TokenVerifier(jwks_url=jwks.url, issuer=ISSUER, client_id=CLIENT_ID) as verifier:
        first_two = unsigned({"alg": "HS256", "kid": "sym"}, id_claims()).rsplit(".", 1)[0]
        signature = hmac.new(b"secret", first_two.encode(), hashlib.sha256).digest()
        await rejected(verifier, f"{first_two}.{b64(signature)}")
        await rejected(verifier, key.sign(id_claims(), kid="sym"))


async def test_wrong_signature_from_another_key_with_the_same_kid(
    verifier: TokenVerifier, other_key: SigningKey
) -> None:
    await rejected(verifier, other_key.sign(id_claims(), kid=KID))


async def test_tampered_claims(verifier: TokenVerifier, key: SigningKey) -> None:
    header, _, signature = key.sign(id_claims()).split(".")
    forged = unsigned({}, id_claims(**{"cognito:groups": ["admin"]})).split(".")[1]
    await rejected(verifier, f"{header}.{forged}.{signature}")


async def test_expired(verifier: TokenVerifier, key: SigningKey) -> None:
    now = int(time.time())
    await rejected(verifier, key.sign(id_claims(iat=now - 7200, exp=now - 60)))


async def test_no_expiry(verifier: TokenVerifier, key: SigningKey) -> None:
    claims = id_claims()
    del claims["exp"]
    await rejected(verifier, key.sign(claims))


@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["x-unknown"], []])
async def test_a_critical_header_extension_is_refused(
    verifier: TokenVerifier, key: SigningKey, crit: list[str]
) -> None:
    # RFC 7515 4.1.11: extensions named in crit must be understood; we understand none
    await rejected(verifier, key.sign(id_claims(), headers={"crit": crit}))


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("spelling", [str, float, lambda v: True, lambda v: [v]])
async def test_dates_must_be_numbers(
    verifier: TokenVerifier, key: SigningKey, claim: str, spelling: Any
) -> None:
    # RFC 7519 NumericDate: a JSON number (a string of digits is not one, nor a bool)
    valid = id_claims(nbf=int(time.time()) - 60)
    value = spelling(valid[claim])
    if isinstance(value, float):
        await verifier.verify(key.sign({**valid, claim: value}))  # a number with a fraction is
        return
    await rejected(verifier, key.sign({**valid, claim: value}))


async def test_not_yet_valid(verifier: TokenVerifier, key: SigningKey) -> None:
    await rejected(verifier, key.sign(id_claims(nbf=int(time.time()) + 600)))


@pytest.mark.parametrize(
    "issuer",
    [
        "https://cognito-idp.ap-northeast-1.amazonaws.com/ap-northeast-1_Other",
        "https://evil.example.com/ap-northeast-1_TestPool",
        None,
    ],
)
async def test_wrong_issuer(verifier: TokenVerifier, key: SigningKey, issuer: str | None) -> None:
    await rejected(verifier, key.sign(id_claims(iss=issuer)))


@pytest.mark.parametrize("audience", ["other-client", ["other-client"], None, ""])
async def test_wrong_audience(verifier: TokenVerifier, key: SigningKey, audience: object) -> None:
    await rejected(verifier, key.sign(id_claims(aud=audience)))


@pytest.mark.parametrize("client_id", ["other-client", None, ""])
async def test_access_token_for_another_client(
    verifier: TokenVerifier, key: SigningKey, client_id: str | None
) -> None:
    # An access token names its client in client_id; an aud claim does not count.
    await rejected(verifier, key.sign(access_claims(client_id=client_id, aud=CLIENT_ID)))


@pytest.mark.parametrize("token_use", ["refresh", "ID", "", None, ["id"]])
async def test_wrong_token_use(verifier: TokenVerifier, key: SigningKey, token_use: object) -> None:
    await rejected(verifier, key.sign(id_claims(token_use=token_use)))


@pytest.mark.parametrize("sub", ["", None, 7])
async def test_missing_subject(verifier: TokenVerifier, key: SigningKey, sub: object) -> None:
    await rejected(verifier, key.sign(id_claims(sub=sub)))


async def test_groups_must_be_a_list(verifier: TokenVerifier, key: SigningKey) -> None:
    await rejected(verifier, key.sign(id_claims(**{"cognito:groups": "admin"})))


async def test_unknown_kid_refetches_exactly_once(
    verifier: TokenVerifier, key: SigningKey, jwks: JwksServer, clock: FakeClock
) -> None:
    await verifier.verify(key.sign(id_claims()))
    assert jwks.hits == 1
    await verifier.verify(key.sign(id_claims()))
    assert jwks.hits == 1  # cached

    # Keys fetched a moment ago are current: no refetch yet.
    await rejected(verifier, key.sign(id_claims(), kid="unknown-0"))
    assert jwks.hits == 1

    clock.now += 31
    await rejected(verifier, key.sign(id_claims(), kid="unknown-1"))
    assert jwks.hits == 2
    for attempt in range(5):  # garbage kids within the interval cannot hammer the JWKS
        await rejected(verifier, key.sign(id_claims(), kid=f"unknown-{attempt + 2}"))
    assert jwks.hits == 2
    await verifier.verify(key.sign(id_claims()))  # the known key still works
    assert jwks.hits == 2

    clock.now += 31
    await rejected(verifier, key.sign(id_claims(), kid="unknown-9"))
    assert jwks.hits == 3


async def test_rotated_key_is_picked_up_after_the_refresh_interval(
    verifier: TokenVerifier,
    key: SigningKey,
    other_key: SigningKey,
    jwks: JwksServer,
    clock: FakeClock,
) -> None:
    await verifier.verify(key.sign(id_claims()))
    rotated = SigningKey(
        kid="key-2", private_pem=other_key.private_pem, public_pem=other_key.public_pem
    )
    jwks.keys = [key.public_jwk(), rotated.public_jwk()]
    clock.now += 31
    context = await verifier.verify(rotated.sign(id_claims()))
    assert context.user_id == "0f7c-user-sub"
    assert jwks.hits == 2


async def test_keys_are_refetched_when_older_than_max_age(
    jwks: JwksServer, key: SigningKey, clock: FakeClock
) -> None:
    async with TokenVerifier(
        jwks_url=jwks.url, issuer=ISSUER, client_id=CLIENT_ID, max_age=600, clock=clock
    ) as verifier:
        await verifier.verify(key.sign(id_claims()))
        jwks.keys = []  # the key was revoked
        clock.now += 601
        await rejected(verifier, key.sign(id_claims()))
        assert jwks.hits == 2


async def test_unreachable_jwks_is_unavailable_not_unauthenticated(
    jwks: JwksServer, key: SigningKey
) -> None:
    jwks.status = 500
    async with TokenVerifier(jwks_url=jwks.url, issuer=ISSUER, client_id=CLIENT_ID) as verifier:
        with pytest.raises(errors.Unavailable):
            await verifier.verify(key.sign(id_claims()))


async def test_concurrent_first_requests_share_one_fetch(
    verifier: TokenVerifier, key: SigningKey, jwks: JwksServer
) -> None:
    token = key.sign(id_claims())
    contexts = await asyncio.gather(*(verifier.verify(token) for _ in range(20)))
    assert {context.user_id for context in contexts} == {"0f7c-user-sub"}
    assert jwks.hits == 1
