"""Checkout admission: a bulkhead that sheds excess load early.

Only ``concurrency`` checkouts price and reserve at once, so under a rush the
later ones see the stock the earlier ones took and fail fast without a
doomed reservation. At most ``queue`` more wait for a slot, each for at most
``wait`` seconds (less when the caller's budget is short): a buyer beyond
that is told at once to come back (``Overloaded``: 503 with ``Retry-After``
at the edge) instead of waiting out the request budget for a 504 whose
outcome nobody knows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ec_recommend.platform.errors import ResourceExhausted

# A waiting checkout may use this share of its caller's remaining budget;
# the rest is for the work itself.
BUDGET_SHARE = 0.25


def overloaded(retry_after: int) -> ResourceExhausted:
    """The typed refusal: not a failure of the service, and safe to retry."""
    return ResourceExhausted(
        "too many checkouts at once; retry shortly",
        reason="overloaded",
        retry_after=str(retry_after),
    )


def queue_wait(configured: float, remaining: float | None) -> float:
    """How long one checkout may wait for a slot, given the caller's budget."""
    if remaining is None:
        return configured
    return max(0.0, min(configured, remaining * BUDGET_SHARE))


class Admission:
    def __init__(self, concurrency: int, *, queue: int, wait: float, retry_after: int = 1) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self.queue = queue
        self.wait = wait
        self.retry_after = retry_after
        self._waiting = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    @asynccontextmanager
    async def slot(self, remaining: float | None = None) -> AsyncIterator[None]:
        """Hold one slot for the block; raises ``ResourceExhausted`` when full."""
        if self._slots.locked():
            if self._waiting >= self.queue:
                raise overloaded(self.retry_after)
            self._waiting += 1
            try:
                async with asyncio.timeout(queue_wait(self.wait, remaining)):
                    await self._slots.acquire()
            except TimeoutError:
                raise overloaded(self.retry_after) from None
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()
