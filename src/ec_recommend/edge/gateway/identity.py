"""Bearer token -> the caller's ``Identity`` as services see it.

The token names a Cognito subject; services know our own user ids. The
subject is resolved through UserService (``GetUser(cognito_user_id=sub)``)
and, where the gateway has the identity provider's accounts, checked there
(``AdminGetUser``: still present and enabled), and remembered for ``ttl``
seconds, so the hot path costs one signature check. An account deactivated
here, or disabled or deleted in the identity provider, is refused within
``ttl`` even while its tokens are unexpired.
Concurrent requests of one subject share one lookup: when the entry expires
under load, one GetUser goes out, not one per waiting request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.context import CallContext, Identity, call_scope

log = logging.getLogger(__name__)


class VerifiedToken(Protocol):
    """The seed's AuthContext (``platform.auth.context.AuthContext``)."""

    @property
    def user_id(self) -> str: ...  # the Cognito subject
    @property
    def email(self) -> str: ...
    @property
    def roles(self) -> Sequence[str]: ...
    @property
    def seller_id(self) -> str | None: ...


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> VerifiedToken: ...


class AccountDirectory(Protocol):
    """The identity provider's view of an account (``CognitoAccounts``)."""

    async def enabled(self, sub: str) -> bool: ...


@dataclass(frozen=True)
class _Known:
    user_id: str
    active: bool
    expires: float
    email: str = ""
    seller_id: str = ""


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header; Unauthenticated if malformed."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 8192 or " " in token:
        raise errors.Unauthenticated("expected 'Authorization: Bearer <token>'")
    return token


def _expiry(token: str, now: float) -> float:
    """The ``exp`` of a token that has just been verified (so its claims are trusted)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return now  # unknown expiry: do not remember it


class IdentityResolver:
    def __init__(
        self,
        verifier: TokenVerifier,
        clients: ClientFactory,
        *,
        directory: AccountDirectory | None = None,
        ttl: float = 10.0,
        token_ttl: float = 60.0,
        max_entries: int = 50_000,
        max_tokens: int = 10_000,
    ) -> None:
        self.verifier = verifier
        self.clients = clients
        self.directory = directory
        self.ttl = ttl
        self.max_entries = max_entries
        self.token_ttl = token_ttl
        self.max_tokens = max_tokens
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._tokens: OrderedDict[str, tuple[VerifiedToken, float]] = OrderedDict()
        self._pending: dict[tuple[str, str, str], asyncio.Future[_Known]] = {}

    async def resolve(self, token: str, request_id: str = "") -> Identity:
        claims = await self._verified(token)
        known = self._known.get(claims.user_id)
        if known is None or known.expires < time.monotonic():
            known = await self._shared_lookup(claims, request_id)
        if not known.active:
            raise errors.Unauthenticated("this account has been deactivated")
        return Identity(
            user_id=known.user_id,
            email=claims.email or known.email,  # access tokens carry no email
            roles=frozenset(claims.roles),
            seller_id=claims.seller_id or known.seller_id,  # access tokens carry none
        )

    async def _verified(self, token: str) -> VerifiedToken:
        """Verify ``token``, remembering a good one until it expires (at most ``ttl``).

        An RSA signature check costs about a millisecond; a client sends the
        same token on every request. Only verified tokens are remembered.
        """
        now = time.time()
        cached = self._tokens.get(token)
        if cached is not None and cached[1] > now:
            return cached[0]
        claims = await self.verifier.verify(token)
        self._tokens[token] = (claims, min(now + self.token_ttl, _expiry(token, now)))
        while len(self._tokens) > self.max_tokens:
            self._tokens.popitem(last=False)
        return claims

    async def _enabled_upstream(self, subject: str) -> bool:
        if self.directory is None:
            return True
        try:
            return await self.directory.enabled(subject)
        except errors.Unavailable:
            # The provider being down must not take every request with it; its
            # verdict is asked again after ttl.
            log.warning("identity provider unreachable: account %s not rechecked", subject)
            return True

    def forget(self, subject: str) -> None:
        """Drop a cached subject (after deactivation, so it takes effect at once)."""
        self._known.pop(subject, None)

    async def _shared_lookup(self, claims: VerifiedToken, request_id: str) -> _Known:
        """``_lookup``, joined by concurrent callers whose claims would look up the same."""
        # email and seller id decide whether a missing account gets registered
        key = (claims.user_id, claims.email, claims.seller_id or "")
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._lookup(claims, request_id))
            self._pending[key] = pending

            def done(future: asyncio.Future[_Known]) -> None:
                self._pending.pop(key, None)
                if not future.cancelled():
                    future.exception()  # retrieved here: every waiter may be gone

            pending.add_done_callback(done)
        # shield: one caller going away must not fail the others' lookup
        return await asyncio.shield(pending)

    async def _lookup(self, claims: VerifiedToken, request_id: str) -> _Known:
        users = self.clients.stub(pb_user.UserServiceStub, "user")
        # an internal call: no end-user identity exists yet
        with call_scope(CallContext(request_id=request_id)):
            try:
                user = await users.get_user(pb_user.GetUserRequest(cognito_user_id=claims.user_id))
            except errors.NotFound:
                if not claims.email:
                    raise errors.Unauthenticated("no account for this token") from None
                # signed up in Cognito but not yet registered here: register now
                user = await users.create_user(
                    pb_user.CreateUserRequest(
                        cognito_user_id=claims.user_id,
                        email=claims.email,
                        seller_id=claims.seller_id or "",
                    )
                )
        active = user.active and await self._enabled_upstream(claims.user_id)
        known = _Known(user.id, active, time.monotonic() + self.ttl, user.email, user.seller_id)
        self._known[claims.user_id] = known
        self._known.move_to_end(claims.user_id)
        while len(self._known) > self.max_entries:
            self._known.popitem(last=False)
        return known
