"""Backfilling a projection from another service's list RPC.

Projections (the search index, the recommendation counts) catch up by paging
a list RPC newest first, stopping at what the previous pass already saw, and
repeating that pass on a timer. Both halves live here so every feed pages and
retries the same way.

Where a pass stops is the source's own clock: the newest change stamp the
previous pass saw, less an overlap for changes still committing as it read.
Taken from the reader's clock instead, a source whose clock ran behind by
more than the overlap had its new changes skipped, and one ahead was re-read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend.platform.clock import aware
from ec_recommend.platform.retry import Backoff, with_retry

T = TypeVar("T")

PAGE_SIZE = 100

# (status, page) -> (items, paging facts) of one list RPC call.
FetchPage = Callable[
    [str, pb_common.PageRequest],
    Awaitable[tuple[Sequence[T], pb_common.PageResponse | None]],
]


@dataclass
class PassWindow:
    """What one pass reads: changes stamped at or after ``since`` (None: all).

    ``newest``: the newest stamp the pass saw, by the source's clock.
    """

    since: datetime | None
    newest: datetime | None = None

    def saw(self, at: datetime) -> None:
        if self.newest is None or at > self.newest:
            self.newest = at


async def newest_first(
    fetch_page: FetchPage[T],
    statuses: Sequence[str],
    *,
    sort_by: str,
    stamp: Callable[[T], datetime | None],
    window: PassWindow,
) -> AsyncIterator[T]:
    """Items in each status, sorted by ``sort_by`` descending, until one is
    older than ``window.since``; ``window`` notes the newest stamp."""
    since = window.since
    for status in statuses:
        page = 1
        while True:
            items, info = await fetch_page(
                status,
                pb_common.PageRequest(
                    page=page, page_size=PAGE_SIZE, sort_by=sort_by, descending=True
                ),
            )
            older = False
            for item in items:
                at = stamp(item)
                if at is not None:
                    at = aware(at)
                    if since is not None and at < since:
                        older = True
                        break
                    window.saw(at)
                yield item
            total_pages = info.total_pages if info is not None else 0
            if older or page >= total_pages:
                break
            page += 1


async def in_batches(items: AsyncIterator[T], size: int = PAGE_SIZE) -> AsyncIterator[list[T]]:
    """``items`` in lists of up to ``size``: one lookup per batch instead of per item."""
    batch: list[T] = []
    async for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def run_passes(
    one_pass: Callable[[PassWindow], Awaitable[int]],
    *,
    interval: float,
    retry: float,
    overlap: timedelta,
    log: logging.Logger,
    failed: str,
    done: str,
) -> None:
    """Run ``one_pass(window)`` now and every ``interval`` seconds (0 = until one succeeds).

    A pass returns how many items it applied (logged with the ``%d`` in
    ``done``); the next pass reads from the newest stamp this one saw, less
    ``overlap`` (from where this one read, when it saw nothing).
    A failed pass (the source down or not deployed yet, a timeout) is logged
    as ``failed`` and retried after ``retry`` seconds; this never raises
    except on cancellation.
    """
    since: datetime | None = None
    waits = Backoff(initial_delay=retry, max_delay=retry, jitter=0.1)

    def report(attempt: int, exc: Exception, delay: float) -> None:
        log.warning("%s, retrying in %.0fs: %s", failed, delay, exc)

    async def attempt() -> tuple[int, PassWindow]:
        window = PassWindow(since)  # a retried pass starts afresh
        return await one_pass(window), window

    while True:
        count, window = await with_retry(
            attempt,
            is_retryable=lambda exc: True,  # a pass never gives up; cancelling it stops it
            backoff=waits,
            max_attempts=None,
            on_retry=report,
        )
        if count:
            log.info(done, count)
        if window.newest is not None:
            since = window.newest - overlap
        if interval <= 0:
            return
        await asyncio.sleep(interval)
