"""The signed call identity: what it carries, and that nothing else passes."""

from __future__ import annotations

import base64
import json

import pytest

from ec_recommend.platform import errors
from ec_recommend.platform.rpc.context import Identity
from ec_recommend.platform.security.call_token import CallSigner, parse_key

KEY = bytes(range(32))
SELLER = Identity(user_id="u1", email="s@example.com", roles=frozenset({"seller"}), seller_id="s1")


def test_a_token_carries_the_service_and_the_user() -> None:
    signer = CallSigner(KEY, clock=lambda: 1000.0)
    signed = signer.verify(signer.sign("gateway", SELLER))
    assert (signed.service, signed.identity) == ("gateway", SELLER)
    internal = signer.verify(signer.sign("inventory", None))
    assert (internal.service, internal.identity) == ("inventory", None)


def test_a_changed_claim_breaks_the_signature() -> None:
    signer = CallSigner(KEY)
    payload, mac = signer.sign("gateway", SELLER).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(errors.Unauthenticated):
        signer.verify(f"{forged}.{mac}")


@pytest.mark.parametrize("token", ["", ".", "a.b", "a", "x" * 50])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(errors.Unauthenticated):
        CallSigner(KEY).verify(token)


def test_another_key_or_an_old_token_is_refused() -> None:
    with pytest.raises(errors.Unauthenticated):
        CallSigner(KEY).verify(CallSigner(bytes(32)).sign("gateway", SELLER))
    now = [1000.0]
    signer = CallSigner(KEY, ttl=60, clock=lambda: now[0])
    token = signer.sign("gateway", SELLER)
    now[0] += 61
    with pytest.raises(errors.Unauthenticated):
        signer.verify(token)


def test_keys_are_long_hex() -> None:
    assert parse_key(KEY.hex()) == KEY
    for text in ("zz", "ab" * 16 + "z", "ab" * 31):
        with pytest.raises(ValueError):
            parse_key(text)
    with pytest.raises(ValueError):
        CallSigner(b"short")


def test_a_token_is_reused_for_half_its_life_and_believed_only_until_it_expires() -> None:
    now = [1000.0]
    signer = CallSigner(KEY, ttl=60, clock=lambda: now[0])
    token = signer.sign("gateway", SELLER)
    assert signer.sign("gateway", SELLER) == token
    assert signer.sign("gateway", None) != token  # another caller, another token
    assert signer.verify(token).identity == SELLER
    now[0] += 31  # under half its life left: a fresh one
    fresh = signer.sign("gateway", SELLER)
    assert fresh != token
    now[0] += 30  # the first has expired, though it was believed before
    with pytest.raises(errors.Unauthenticated):
        signer.verify(token)
    assert signer.verify(fresh).identity == SELLER
