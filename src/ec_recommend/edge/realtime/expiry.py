"""A socket lives no longer than the token that opened it.

Tokens are checked once, at connect; a socket outliving its token would keep
a deactivated or signed-out user connected. The ``exp`` claim of the
(already verified) JWT schedules a close with ``TOKEN_EXPIRED``; the client
reconnects with a fresh token and resumes with ``last_event_id``.
"""

from __future__ import annotations

import asyncio
import base64
import time

import orjson

from ec_recommend.edge.realtime.hub import Connection

TOKEN_EXPIRED = 4401


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim (epoch seconds) of a verified JWT; None when it has none."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


def close_at_expiry(connection: Connection, token: str) -> asyncio.TimerHandle | None:
    """Schedule the close; the caller cancels the handle when the socket ends first."""
    expires = token_expiry(token)
    if expires is None:
        return None
    delay = max(0.0, expires - time.time())
    return asyncio.get_running_loop().call_later(
        delay, connection.close, TOKEN_EXPIRED, "token expired: reconnect with a fresh token"
    )
