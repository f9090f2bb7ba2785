"""Who is calling, signed: the identity a gRPC call carries between services.

Every call carries ``x-ec-call``: the calling service and, when the call is
made for an end user, that user (as the gateway verified them), with an
expiry, under an HMAC-SHA256 of a key every process of the system is
configured with. A server believes nothing else about the caller: the old
plain ``x-user-*`` metadata is ignored, and a call without a valid token
(and without a client certificate under mTLS) is UNAUTHENTICATED. Each hop
signs afresh as itself, so the allow-list sees the real caller with or
without mTLS, and the user's identity is only ever what the gateway put in.

The key: ``EC_CALL_IDENTITY_KEY`` (hex, at least 32 bytes), else a key kept
in the data dir (``call-identity.key``, made on first use, 0600) that the
processes sharing it share; ``up`` puts a fresh one there on every start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ec_recommend.config import Config
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.context import Identity, current_call
from ec_recommend.platform.security.identity import current_actor

METADATA_KEY = "x-ec-call"
KEY_FILE = "call-identity.key"
KEY_BYTES = 32
# Long enough for any clock skew between hosts and any hop's queueing; short
# enough that a token lifted from a log or a capture is soon worthless.
TTL = 120.0
_INVALID = "the call carries no valid service identity"


@dataclass(frozen=True)
class SignedCall:
    service: str
    identity: Identity | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CallSigner:
    def __init__(
        self, key: bytes, *, ttl: float = TTL, clock: Callable[[], float] = time.time
    ) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError(f"a call identity key has at least {KEY_BYTES} bytes")
        self._key = key
        self._ttl = ttl
        self._clock = clock
        # Signing and checking cost ~11 µs a call, a tenth of an in-process
        # call: a token is reused while more than half its life is left, and a
        # token once verified is believed until it expires (only good ones are kept).
        self._signed: dict[tuple[str, Identity | None], tuple[str, float]] = {}
        self._verified: dict[str, tuple[SignedCall, float]] = {}

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def sign(self, service: str, identity: Identity | None) -> str:
        now = self._clock()
        reused = self._signed.get((service, identity))
        if reused is not None and reused[1] - now > self._ttl / 2:
            return reused[0]
        token, expires = self._signed_now(service, identity, now)
        _remember(self._signed, (service, identity), (token, expires))
        return token

    def _signed_now(self, service: str, identity: Identity | None, now: float) -> tuple[str, float]:
        expires = round(now + self._ttl, 3)
        claims: dict[str, object] = {"svc": service, "exp": expires}
        if identity is not None:
            claims["sub"] = identity.user_id
            claims["roles"] = sorted(identity.roles)
            if identity.email:
                claims["email"] = identity.email
            if identity.seller_id:
                claims["sid"] = identity.seller_id
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload)}", expires

    def verify(self, token: str) -> SignedCall:
        """The caller named by ``token``; Unauthenticated when it is forged or stale."""
        now = self._clock()
        known = self._verified.get(token)
        if known is not None and known[1] >= now:
            return known[0]
        call, expires = self._checked(token, now)
        _remember(self._verified, token, (call, expires))
        return call

    def _checked(self, token: str, now: float) -> tuple[SignedCall, float]:
        payload, _, mac = token.partition(".")
        if not payload or not hmac.compare_digest(mac, self._mac(payload)):
            raise errors.Unauthenticated(_INVALID)
        try:
            claims = json.loads(_unb64(payload))
            service, expires = claims["svc"], claims["exp"]
        except (ValueError, KeyError, TypeError):
            raise errors.Unauthenticated(_INVALID) from None
        if not isinstance(service, str) or not isinstance(expires, int | float):
            raise errors.Unauthenticated(_INVALID)
        if expires < now:
            raise errors.Unauthenticated(_INVALID)
        identity = None
        if "sub" in claims:
            identity = Identity(
                user_id=str(claims["sub"]),
                email=str(claims.get("email", "")),
                roles=frozenset(str(role) for role in claims.get("roles", ())),
                seller_id=str(claims.get("sid", "")),
            )
        return SignedCall(service, identity), float(expires)


_REMEMBERED = 4096  # tokens per signer and direction; the users active in a TTL


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if len(memo) >= _REMEMBERED:
        memo.clear()  # expired and live alike: what is live is made again
    memo[key] = value


class CallSigning:
    """What a process's clients sign their calls with (``ClientFactory.signing``).

    ``service`` names calls made outside every service and consumer (the
    gateway's); the others go out as the service or consumer they act for.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self.signer: CallSigner | None = None

    def token(self) -> str | None:
        if self.signer is None:
            return None
        return self.signer.sign(current_actor() or self.service, current_call().identity)


def signer_for(config: Config) -> CallSigner:
    """The signer of ``config``: its key, or the data dir's."""
    key = config.tls.call_key or data_dir_key(config.storage.data_dir)
    return CallSigner(key)


def parse_key(text: str) -> bytes:
    """``EC_CALL_IDENTITY_KEY``: hex of at least 32 bytes."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ValueError("expected hex") from None
    if len(key) < KEY_BYTES:
        raise ValueError(f"expected at least {KEY_BYTES} bytes ({2 * KEY_BYTES} hex digits)")
    return key


def renew_data_dir_key(data_dir: Path) -> bytes:
    """A fresh key for ``data_dir``, replacing the one kept there: what ``up``
    does on every start, so processes started beside it in the same data dir
    (``serve``) share its key and tokens of an earlier run are worthless."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    path = data_dir / KEY_FILE
    temporary = path.with_name(f"{KEY_FILE}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(key.hex() + "\n")
    os.replace(temporary, path)
    return key


def data_dir_key(data_dir: Path) -> bytes:
    """The key kept in ``data_dir``, made on first use (readable by its owner only)."""
    path = data_dir / KEY_FILE
    try:
        return parse_key(path.read_text(encoding="ascii"))
    except (FileNotFoundError, ValueError):
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    temporary = path.with_name(f"{KEY_FILE}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(key.hex() + "\n")
    try:
        os.link(temporary, path)  # the first process to make one wins; others read it
    except FileExistsError:
        key = parse_key(path.read_text(encoding="ascii"))
    finally:
        temporary.unlink(missing_ok=True)
    return key
