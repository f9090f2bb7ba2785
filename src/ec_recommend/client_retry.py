"""Repeating a keyed write whose outcome the client does not know.

A write that carries an ``Idempotency-Key`` can be sent again safely: the
server returns the first result instead of doing the work twice. So when the
answer is a 504 (the outcome is unknown), the connection broke, or the server
refused for now (503/429, or a 409 asking for a retry while a request with
the same key is still running), the client sends it again with the same key,
waiting at least as long as the server's ``Retry-After`` asks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

from ec_recommend.client_errors import ApiError
from ec_recommend.platform.retry import Backoff, RetriesExhausted, with_retry

T = TypeVar("T")

# a first wait long enough for a server-side claim to settle, growing to 5 s
WRITE_BACKOFF = Backoff(initial_delay=0.2, max_delay=5.0, multiplier=2.0, jitter=0.2)

# 503, 429 and a 409 with Retry-After are refusals; 504 means "unknown"
_REFUSED_FOR_NOW = frozenset({429, 503})
_UNKNOWN_OUTCOME = 504


@dataclass(frozen=True)
class WriteRetry:
    """How a keyed write is repeated: ``attempts`` in all (1 = never repeat).

    A server's ``Retry-After`` is honoured; one longer than ``max_wait``
    seconds ends the retries (the error is raised) rather than being cut short.
    """

    attempts: int = 4
    backoff: Backoff = WRITE_BACKOFF
    max_wait: float = 30.0


NEVER = WriteRetry(attempts=1)


def server_wait(error: Exception) -> float:
    """Seconds the server asked to wait (``Retry-After``), 0 if it did not say."""
    if not isinstance(error, ApiError):
        return 0.0
    try:
        seconds = float(error.headers.get("Retry-After", "0"))
    except ValueError:  # an HTTP date: we only ever send seconds
        return 0.0
    return seconds if seconds > 0 else 0.0  # NaN and negatives: no wait asked


def worth_repeating(error: Exception, policy: WriteRetry) -> bool:
    """Whether a keyed write that failed with ``error`` may be sent again."""
    if isinstance(error, aiohttp.ClientConnectionError):
        # the connection broke; the client's own timeout is its budget, not a fault
        return not isinstance(error, TimeoutError)
    if not isinstance(error, ApiError) or server_wait(error) > policy.max_wait:
        return False
    if error.status == _UNKNOWN_OUTCOME or error.status in _REFUSED_FOR_NOW:
        return True
    return error.status == 409 and "Retry-After" in error.headers


async def repeat_write(
    send: Callable[[], Awaitable[T]],
    policy: WriteRetry,
    *,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """Run ``send`` (one request with a fixed key) until it has a definite answer."""
    asked = 0.0

    def note(attempt: int, error: Exception, delay: float) -> None:
        nonlocal asked
        asked = server_wait(error)

    async def wait(delay: float) -> None:
        await sleep(max(delay, asked))

    try:
        return await with_retry(
            send,
            is_retryable=lambda error: worth_repeating(error, policy),
            backoff=policy.backoff,
            max_attempts=max(policy.attempts, 1),
            on_retry=note,
            sleep=wait,
        )
    except RetriesExhausted as exhausted:
        raise exhausted.last from None
