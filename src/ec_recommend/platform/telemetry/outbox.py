"""Outbox gauges: unsent events and the age of the oldest, per service.

Polled by a background task owned with ``async with`` by the process that
runs the service's relay. A failed poll keeps the last value and is retried
at the next interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress

import sqlalchemy as sa

from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.events.outbox import outbox
from ec_recommend.platform.storage import Database
from ec_recommend.platform.telemetry.metrics import Metrics, process_metrics

log = logging.getLogger(__name__)

POLL_INTERVAL = 15.0


async def outbox_state(db: Database) -> tuple[int, float]:
    """Unsent events of ``db``'s outbox and the age in seconds of the oldest one."""
    query = sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(
        outbox.c.sent_at.is_(None)
    )
    async with db.reading() as conn:
        count, oldest = (await conn.execute(query)).one()
    age = (utcnow() - aware(oldest)).total_seconds() if oldest is not None else 0.0
    return int(count), age


@asynccontextmanager
async def polling(
    name: str, poll: Callable[[], Awaitable[None]], interval: float = POLL_INTERVAL
) -> AsyncIterator[None]:
    """Run ``poll`` now and every ``interval`` seconds until the block ends."""

    async def loop() -> None:
        failures = 0
        while True:
            try:
                await poll()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("%s: poll failed (%s); keeping the last value", name, exc)
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def watching_outbox(
    db: Database, interval: float = POLL_INTERVAL, metrics: Metrics | None = None
) -> AbstractAsyncContextManager[None]:
    """``async with``: keeps ``outbox_backlog_events`` and the oldest age of ``db`` current."""
    recorder = metrics or process_metrics()

    async def poll() -> None:
        backlog, age = await outbox_state(db)
        recorder.outbox_state(db.service, backlog, age)

    return polling(f"outbox-metrics-{db.service}", poll, interval)
