"""Cognito token verification: the seed's ``authorize(token)``.

RS256 only, the key chosen by the header's ``kid`` from the pool's JWKS;
``exp``, ``iss``, audience (ID token ``aud``) or ``client_id`` (access token)
and ``token_use`` are checked. Every bad token raises ``Unauthenticated`` with
one message, so a caller learns nothing about why it was rejected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import aiohttp
from jose import jwk, jwt
from jose.exceptions import JOSEError

from ec_recommend.config import AuthConfig
from ec_recommend.platform.auth.context import AuthContext
from ec_recommend.platform.errors import Unauthenticated, Unavailable

log = logging.getLogger(__name__)

ALGORITHM = "RS256"
TOKEN_USES = frozenset({"id", "access"})
DATE_CLAIMS = ("exp", "iat", "nbf", "auth_time")
MAX_TOKEN_LENGTH = 16 * 1024  # Cognito tokens are a few KB; bigger is an attack
MAX_JWKS_BYTES = 256 * 1024
INVALID = "invalid or expired token"


class TokenVerifier:
    """Verifies Cognito ID and access tokens against a cached JWKS.

    Use as ``async with TokenVerifier(...) as verifier``: it owns its HTTP
    session unless one is passed in. The JWKS is fetched on first use,
    refetched when older than ``max_age``, and refetched when a token names
    an unknown ``kid`` — at most once per ``refresh_interval`` seconds.
    """

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        client_id: str,
        refresh_interval: float = 30.0,
        max_age: float = 3600.0,
        fetch_timeout: float = 5.0,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (jwks_url and issuer and client_id):
            raise ValueError("TokenVerifier needs jwks_url, issuer and client_id")
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.client_id = client_id
        self._refresh_interval = refresh_interval
        self._max_age = max_age
        self._timeout = aiohttp.ClientTimeout(total=fetch_timeout)
        self._session = session
        self._owns_session = session is None
        self._clock = clock
        self._keys: dict[str, jwk.Key] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    @classmethod
    def from_config(
        cls, auth: AuthConfig, *, session: aiohttp.ClientSession | None = None
    ) -> TokenVerifier:
        return cls(
            jwks_url=auth.resolved_jwks_url,
            issuer=auth.resolved_issuer,
            client_id=auth.client_id,
            refresh_interval=auth.jwks_refresh_interval,
            max_age=auth.jwks_max_age,
            session=session,
        )

    async def __aenter__(self) -> TokenVerifier:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def verify(self, token: str) -> AuthContext:
        """The caller behind ``token``; ``Unauthenticated`` for any bad token.

        Raises ``Unavailable`` only when the JWKS cannot be fetched at all.
        """
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated(INVALID)
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError:
            raise Unauthenticated(INVALID) from None
        kid = header.get("kid")
        # Checked before any key is looked up: "none", HS256 and friends never
        # reach a verification routine. A "crit" header names extensions the
        # verifier must understand (RFC 7515 4.1.11); Cognito uses none and we
        # understand none, so any token carrying one is refused.
        if header.get("alg") != ALGORITHM or not isinstance(kid, str) or not kid:
            raise Unauthenticated(INVALID)
        if "crit" in header:
            raise Unauthenticated(INVALID)
        key = await self._key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                options={
                    "verify_aud": False,  # access tokens carry client_id instead
                    "verify_at_hash": False,
                    "require_exp": True,
                    "require_iss": True,
                    "require_sub": True,
                },
            )
        except (JOSEError, ValueError, TypeError):
            raise Unauthenticated(INVALID) from None
        return self._context(claims)

    def _context(self, claims: Mapping[str, Any]) -> AuthContext:
        # NumericDate (RFC 7519 2) is a JSON number: a string of digits or a
        # bool slips through the library's comparisons, so it is refused here.
        for name in DATE_CLAIMS:
            value = claims.get(name)
            if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise Unauthenticated(INVALID)
        token_use = claims.get("token_use")
        if not isinstance(token_use, str) or token_use not in TOKEN_USES:
            raise Unauthenticated(INVALID)
        if token_use == "id":
            audience = claims.get("aud")
            audiences = audience if isinstance(audience, list) else [audience]
            if self.client_id not in audiences:
                raise Unauthenticated(INVALID)
        elif claims.get("client_id") != self.client_id:
            raise Unauthenticated(INVALID)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise Unauthenticated(INVALID)
        raw_groups = claims.get("cognito:groups") or []
        if not isinstance(raw_groups, list):
            raise Unauthenticated(INVALID)
        groups = tuple(group for group in raw_groups if isinstance(group, str))
        email = claims.get("email") if token_use == "id" else None
        seller_id = claims.get("custom:seller_id") if token_use == "id" else None
        return AuthContext(
            user_id=sub,
            email=email if isinstance(email, str) else "",
            roles=groups,
            seller_id=seller_id if isinstance(seller_id, str) and seller_id else None,
        )

    async def _key(self, kid: str) -> jwk.Key:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at >= self._max_age
        if kid in self._keys and not stale:
            return self._keys[kid]
        async with self._lock:
            # Another task may have refreshed while this one waited.
            now = self._clock()
            fresh = self._fetched_at is not None and now - self._fetched_at < self._max_age
            if kid in self._keys and fresh:
                return self._keys[kid]
            may_refetch = (
                self._fetched_at is None
                or not fresh
                or now - self._fetched_at >= self._refresh_interval
            )
            if may_refetch:
                self._keys = await self._fetch()
                self._fetched_at = self._clock()
        key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated(INVALID)
        return key

    async def _fetch(self) -> dict[str, jwk.Key]:
        if self._session is None:
            raise RuntimeError("TokenVerifier used outside 'async with'")
        self.fetch_count += 1
        try:
            async with self._session.get(self.jwks_url, timeout=self._timeout) as response:
                if response.status != 200:
                    raise Unavailable("token keys are unavailable")
                body = await response.content.read(MAX_JWKS_BYTES + 1)
                if len(body) > MAX_JWKS_BYTES:
                    raise Unavailable("token keys are unavailable")
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("JWKS fetch from %s failed: %s", self.jwks_url, exc)
            raise Unavailable("token keys are unavailable") from None
        return parse_jwks(body)


def parse_jwks(body: bytes | str) -> dict[str, jwk.Key]:
    """RSA signing keys by ``kid``; entries for other algorithms are ignored."""
    try:
        document = json.loads(body)
    except ValueError:
        raise Unavailable("token keys are unavailable") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise Unavailable("token keys are unavailable")
    keys: dict[str, jwk.Key] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            keys[kid] = jwk.construct(entry, algorithm=ALGORITHM)
        except JOSEError:
            log.warning("JWKS entry %s is not a usable RSA key", kid)
    return keys
