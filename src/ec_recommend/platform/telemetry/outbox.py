"""Gauges of state outside the process: outbox backlog and dead-letter depth.

Both are polled by background tasks owned with ``async with``: the outbox
watcher by the process that runs a service's relay, the dead-letter watcher
by the process that runs the consumers of those queues. A failed poll keeps
the last value and is retried at the next interval.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any

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


async def dead_letter_depths(sqs: Any, queues: Mapping[str, str]) -> dict[str, int]:
    """Messages waiting in the DLQ of each queue (name → URL), by DLQ name."""
    depths: dict[str, int] = {}
    for url in queues.values():
        attributes = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
        policy = attributes.get("Attributes", {}).get("RedrivePolicy")
        if not policy:
            continue
        dlq_name = str(json.loads(policy)["deadLetterTargetArn"]).rsplit(":", 1)[-1]
        dlq_url = (await sqs.get_queue_url(QueueName=dlq_name))["QueueUrl"]
        dlq = await sqs.get_queue_attributes(
            QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        depths[dlq_name] = int(dlq["Attributes"]["ApproximateNumberOfMessages"])
    return depths


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


def watching_dead_letters(
    sqs: Any,
    queues: Mapping[str, str],
    interval: float = POLL_INTERVAL,
    metrics: Metrics | None = None,
) -> AbstractAsyncContextManager[None]:
    """``async with``: keeps ``queue_dlq_messages`` of the queues' DLQs current."""
    recorder = metrics or process_metrics()

    async def poll() -> None:
        for name, depth in (await dead_letter_depths(sqs, queues)).items():
            recorder.dlq_messages(name, depth)

    return polling("dead-letter-metrics", poll, interval)
