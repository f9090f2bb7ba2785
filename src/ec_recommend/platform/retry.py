"""One way to retry: the seed's WithRetry (section 9.2), for asyncio.

``with_retry(operation, is_retryable=...)`` runs ``operation`` until it
succeeds, fails with an error ``is_retryable`` refuses, or runs out of
attempts or time; then it raises ``RetriesExhausted`` (the last error is its
``__cause__`` and ``last``). Waits grow from ``initial_delay`` by
``multiplier`` up to ``max_delay``, spread by jitter so that callers that
failed together do not retry together.

It is deadline-aware (it never sleeps past ``deadline``, a loop time) and
cancellation-safe: a cancelled caller is never retried or swallowed, since
``CancelledError`` is not an ``Exception``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar

T = TypeVar("T")

StopReason = Literal["attempts", "deadline", "denied"]


@dataclass(frozen=True)
class Backoff:
    initial_delay: float = 0.05
    max_delay: float = 1.0
    multiplier: float = 2.0
    jitter: float = 0.2  # each delay is scaled by a random factor in [1-j, 1+j]

    def delays(self, rng: Callable[[], float] = random.random) -> Iterator[float]:
        """The wait before each retry: exponential, capped, with jitter."""
        delay = self.initial_delay
        while True:
            spread = 1.0 + self.jitter * (2.0 * rng() - 1.0)
            yield min(delay * spread, self.max_delay)
            delay = min(delay * self.multiplier, self.max_delay)


class RetriesExhausted(Exception):
    """Every allowed attempt failed; ``last`` is the final error."""

    def __init__(self, attempts: int, last: Exception, reason: StopReason) -> None:
        super().__init__(f"gave up after {attempts} attempt(s) ({reason}): {last}")
        self.attempts = attempts
        self.last = last
        self.reason = reason


async def with_retry(
    operation: Callable[[], Awaitable[T]],
    *,
    is_retryable: Callable[[Exception], bool],
    backoff: Backoff = Backoff(),
    max_attempts: int | None = 3,
    deadline: float | None = None,
    may_retry: Callable[[], bool] | None = None,
    on_retry: Callable[[int, Exception, float], None] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
) -> T:
    """Run ``operation`` with retries.

    ``max_attempts`` None retries without a count (bounded by ``deadline``
    or by cancelling the caller). ``may_retry`` is asked before each retry
    (e.g. a retry budget); ``on_retry(attempt, error, delay)`` is told of
    each retry before its wait. ``sleep`` may return early (a stop signal):
    the next attempt then runs at once.
    """
    loop = asyncio.get_running_loop()
    waits: Iterator[float] | None = None  # made on the first failure: most calls have none
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except Exception as exc:
            if not is_retryable(exc):
                raise
            reason = _stop_reason(attempt, max_attempts)
            if waits is None:
                waits = backoff.delays(rng)
            delay = next(waits)
            if reason is None and deadline is not None and loop.time() + delay >= deadline:
                reason = "deadline"
            if reason is None and may_retry is not None and not may_retry():
                reason = "denied"
            if reason is not None:
                raise RetriesExhausted(attempt, exc, reason) from exc
            if on_retry is not None:
                on_retry(attempt, exc, delay)
        await sleep(delay)


def _stop_reason(attempt: int, max_attempts: int | None) -> StopReason | None:
    if max_attempts is not None and attempt >= max_attempts:
        return "attempts"
    return None
