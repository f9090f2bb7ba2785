"""Bearer token -> the caller's ``Identity`` as services see it.

The token names a Cognito subject; services know our own user ids. The
subject is resolved through UserService (``GetUser(cognito_user_id=sub)``)
and remembered briefly, so the hot path costs one signature check. A
deactivated account is refused even while its tokens are unexpired.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.context import CallContext, Identity, call_scope


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


@dataclass(frozen=True)
class _Known:
    user_id: str
    active: bool
    expires: float


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header; Unauthenticated if malformed."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 8192 or " " in token:
        raise errors.Unauthenticated("expected 'Authorization: Bearer <token>'")
    return token


class IdentityResolver:
    def __init__(
        self,
        verifier: TokenVerifier,
        clients: ClientFactory,
        *,
        ttl: float = 10.0,
        max_entries: int = 50_000,
    ) -> None:
        self.verifier = verifier
        self.clients = clients
        self.ttl = ttl
        self.max_entries = max_entries
        self._known: OrderedDict[str, _Known] = OrderedDict()

    async def resolve(self, token: str, request_id: str = "") -> Identity:
        claims = await self.verifier.verify(token)
        known = self._known.get(claims.user_id)
        if known is None or known.expires < time.monotonic():
            known = await self._lookup(claims, request_id)
        if not known.active:
            raise errors.Unauthenticated("this account has been deactivated")
        return Identity(
            user_id=known.user_id,
            email=claims.email,
            roles=frozenset(claims.roles),
            seller_id=claims.seller_id or "",
        )

    def forget(self, subject: str) -> None:
        """Drop a cached subject (after deactivation, so it takes effect at once)."""
        self._known.pop(subject, None)

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
                    pb_user.CreateUserRequest(cognito_user_id=claims.user_id, email=claims.email)
                )
        known = _Known(user.id, user.active, time.monotonic() + self.ttl)
        self._known[claims.user_id] = known
        self._known.move_to_end(claims.user_id)
        while len(self._known) > self.max_entries:
            self._known.popitem(last=False)
        return known
