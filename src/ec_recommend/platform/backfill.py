"""Backfilling a projection from another service's list RPC.

Projections (the search index, the recommendation counts) catch up by paging
a list RPC newest first, stopping at what the previous pass already saw, and
repeating that pass on a timer. Both halves live here so every feed pages and
retries the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.retry import Backoff, with_retry

T = TypeVar("T")

PAGE_SIZE = 100

# (status, page) -> (items, paging facts) of one list RPC call.
FetchPage = Callable[
    [str, pb_common.PageRequest],
    Awaitable[tuple[Sequence[T], pb_common.PageResponse | None]],
]


async def newest_first(
    fetch_page: FetchPage[T],
    statuses: Sequence[str],
    *,
    sort_by: str,
    stamp: Callable[[T], datetime | None],
    since: datetime | None,
) -> AsyncIterator[T]:
    """Items in each status, sorted by ``sort_by`` descending, until one is older than ``since``."""
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
                if since is not None and at is not None and aware(at) < since:
                    older = True
                    break
                yield item
            total_pages = info.total_pages if info is not None else 0
            if older or page >= total_pages:
                break
            page += 1


async def run_passes(
    one_pass: Callable[[datetime | None], Awaitable[int]],
    *,
    interval: float,
    retry: float,
    overlap: timedelta,
    log: logging.Logger,
    failed: str,
    done: str,
) -> None:
    """Run ``one_pass(since)`` now and every ``interval`` seconds (0 = until one succeeds).

    A pass returns how many items it applied (logged with the ``%d`` in
    ``done``); the next pass gets the start of this one minus ``overlap``.
    A failed pass (the source down or not deployed yet, a timeout) is logged
    as ``failed`` and retried after ``retry`` seconds; this never raises
    except on cancellation.
    """
    since: datetime | None = None
    waits = Backoff(initial_delay=retry, max_delay=retry, jitter=0.1)

    def report(attempt: int, exc: Exception, delay: float) -> None:
        log.warning("%s, retrying in %.0fs: %s", failed, delay, exc)

    while True:
        started = utcnow()
        count = await with_retry(
            partial(one_pass, since),
            is_retryable=lambda exc: True,  # a pass never gives up; cancelling it stops it
            backoff=waits,
            max_attempts=None,
            on_retry=report,
        )
        if count:
            log.info(done, count)
        since = started - overlap
        if interval <= 0:
            return
        await asyncio.sleep(interval)
