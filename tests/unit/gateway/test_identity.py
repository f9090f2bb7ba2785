"""Token -> Identity: verification remembered per token, subjects resolved once."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest

from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.edge.gateway.identity import IdentityResolver, bearer_token
from ec_recommend.platform import errors
from ec_recommend.platform.auth.context import AuthContext


def token(exp: float, name: str = "t") -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp, "n": name}).encode()).decode()
    return f"header.{payload.rstrip('=')}.{name}"


class Verifier:
    def __init__(self) -> None:
        self.calls = 0

    async def verify(self, token: str) -> AuthContext:
        self.calls += 1
        if "bad" in token:
            raise errors.Unauthenticated("invalid or expired token")
        return AuthContext("sub-1", "a@example.com", ("seller",), "s-1")


class Users:
    def __init__(self, active: bool = True) -> None:
        self.calls = 0
        self.active = active

    async def get_user(self, request: pb_user.GetUserRequest) -> pb_user.User:
        self.calls += 1
        return pb_user.User(
            id="u-1",
            cognito_user_id=request.cognito_user_id,
            email="a@example.com",
            active=self.active,
        )


class Clients:
    def __init__(self, users: Users) -> None:
        self.users = users

    def stub(self, stub_type: Any, service: str) -> Users:
        return self.users


@pytest.mark.asyncio
async def test_a_token_is_verified_once_and_its_subject_resolved_once() -> None:
    verifier, users = Verifier(), Users()
    resolver = IdentityResolver(verifier, Clients(users))  # type: ignore[arg-type]
    good = token(time.time() + 600)
    for _ in range(5):
        identity = await resolver.resolve(good)
    assert (verifier.calls, users.calls) == (1, 1)
    assert identity.user_id == "u-1"
    assert identity.seller_id == "s-1"
    assert identity.roles == frozenset({"seller"})


@pytest.mark.asyncio
async def test_expired_and_bad_tokens_are_never_remembered() -> None:
    verifier = Verifier()
    resolver = IdentityResolver(verifier, Clients(Users()))  # type: ignore[arg-type]
    stale = token(time.time() - 1)
    await resolver.resolve(stale)
    await resolver.resolve(stale)
    assert verifier.calls == 2  # its exp has passed: checked again every time
    for _ in range(2):
        with pytest.raises(errors.Unauthenticated):
            await resolver.resolve(token(time.time() + 600, "bad"))
    assert verifier.calls == 4


@pytest.mark.asyncio
async def test_deactivated_accounts_are_refused() -> None:
    resolver = IdentityResolver(Verifier(), Clients(Users(active=False)))  # type: ignore[arg-type]
    with pytest.raises(errors.Unauthenticated):
        await resolver.resolve(token(time.time() + 600))


class Directory:
    def __init__(self, enabled: bool | None) -> None:
        self.state = enabled  # None: the identity provider cannot be reached

    async def enabled(self, sub: str) -> bool:
        if self.state is None:
            raise errors.Unavailable("identity provider unreachable")
        return self.state


@pytest.mark.asyncio
async def test_an_account_disabled_upstream_is_refused_after_the_ttl() -> None:
    directory = Directory(True)
    resolver = IdentityResolver(
        Verifier(),
        Clients(Users()),  # type: ignore[arg-type]
        directory=directory,
        ttl=0.0,  # every request asks again
    )
    good = token(time.time() + 600)
    assert (await resolver.resolve(good)).user_id == "u-1"
    directory.state = None  # the provider is down: let the account through
    assert (await resolver.resolve(good)).user_id == "u-1"
    directory.state = False  # disabled or deleted in the pool
    with pytest.raises(errors.Unauthenticated):
        await resolver.resolve(good)


@pytest.mark.asyncio
async def test_access_tokens_get_the_email_from_the_user_record() -> None:
    class AccessVerifier(Verifier):
        async def verify(self, token: str) -> AuthContext:
            return AuthContext("sub-1", "", ("customer",), None)

    resolver = IdentityResolver(AccessVerifier(), Clients(Users()))  # type: ignore[arg-type]
    identity = await resolver.resolve(token(time.time() + 600))
    assert (identity.user_id, identity.email, identity.seller_id) == ("u-1", "a@example.com", "")


def test_bearer_header_parsing() -> None:
    assert bearer_token(None) is None
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    for bad in ("Basic abc", "Bearer", "Bearer a b", "abc", "Bearer " + "x" * 9000):
        with pytest.raises(errors.Unauthenticated):
            bearer_token(bad)


@pytest.mark.asyncio
async def test_concurrent_requests_of_one_subject_share_one_lookup() -> None:
    class SlowUsers(Users):
        async def get_user(self, request: pb_user.GetUserRequest) -> pb_user.User:
            await asyncio.sleep(0)  # still in flight while the others arrive
            return await super().get_user(request)

    users = SlowUsers()
    resolver = IdentityResolver(Verifier(), Clients(users), ttl=60)  # type: ignore[arg-type]
    good = token(time.time() + 600)
    await resolver.resolve(good)  # the token verified; the subject now expires:
    resolver.forget("sub-1")
    identities = await asyncio.gather(*(resolver.resolve(good) for _ in range(20)))
    assert users.calls == 2, "one lookup for the 20 concurrent requests"
    assert {identity.user_id for identity in identities} == {"u-1"}


@pytest.mark.asyncio
async def test_a_failed_shared_lookup_fails_every_waiter_and_is_not_remembered() -> None:
    class DownUsers(Users):
        async def get_user(self, request: pb_user.GetUserRequest) -> pb_user.User:
            self.calls += 1
            await asyncio.sleep(0)
            raise errors.Unavailable("user is unreachable")

    users = DownUsers()
    resolver = IdentityResolver(Verifier(), Clients(users))  # type: ignore[arg-type]
    good = token(time.time() + 600)
    results = await asyncio.gather(
        *(resolver.resolve(good) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, errors.Unavailable) for r in results)
    with pytest.raises(errors.Unavailable):
        await resolver.resolve(good)
    assert users.calls == 2, "one shared failed lookup, then a fresh one"
