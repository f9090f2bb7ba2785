"""Receive pacing against moto: fuller batches under a trickle, no wait after idle."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from ec_recommend.config import EventsConfig, StorageConfig
from ec_recommend.platform.events.aws import queue_url
from ec_recommend.platform.events.envelope import encode
from ec_recommend.platform.events.inbox import ensure_inbox
from ec_recommend.platform.events.provision import ProvisionReport
from ec_recommend.platform.events.worker import ConsumerWorker
from ec_recommend.platform.storage import open_database
from tests.conftest import wait_for
from tests.integration.events.conftest import (
    EFFECTS_MIGRATIONS,
    count_effect,
    depth_is,
    product_event,
    subscription,
)
from tests.integration.events.test_batches import CountingSqs

pytestmark = pytest.mark.asyncio

QUEUE = "search-index-queue"


@asynccontextmanager
async def counted_worker(
    storage: StorageConfig, config: EventsConfig, sqs: CountingSqs
) -> AsyncIterator[ConsumerWorker]:
    sub = subscription(QUEUE, {"product.updated": count_effect})
    async with open_database(storage, "probe", EFFECTS_MIGRATIONS) as db:
        await ensure_inbox(db)
        worker = ConsumerWorker(sub, db, sqs, config)
        if isinstance(sqs, ReceiveLog):
            sqs.worker = worker
        task = asyncio.create_task(worker.run())
        try:
            await worker.wait_ready()
            yield worker
        finally:
            worker.stop()
            # Stop does not wait a linger out (only a long poll in flight).
            await asyncio.wait_for(task, timeout=config.consumer_wait_seconds + 5)


class ReceiveLog(CountingSqs):
    """Counts calls and notes, per receive, the lingers before it and what it brought."""

    def __init__(self, sqs: Any) -> None:
        super().__init__(sqs)
        self.worker: ConsumerWorker | None = None
        self.receives: list[tuple[int, int]] = []  # (lingers before it, messages)

    async def receive_message(self, **kwargs: Any) -> Any:
        self.calls["receive_message"] += 1
        assert self.worker is not None
        lingered = self.worker.stats.lingered
        response = await self._sqs.receive_message(**kwargs)
        self.receives.append((lingered, len(response.get("Messages", []))))
        return response


async def send_one_by_one(sqs: Any, config: EventsConfig, count: int) -> None:
    url = await queue_url(sqs, config, QUEUE)
    for _ in range(count):
        await sqs.send_message(QueueUrl=url, MessageBody=encode(product_event()))


async def test_a_trickle_is_received_in_full_batches(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    """Messages landing one by one: without the linger, nearly a receive each."""
    # A linger far longer than sending takes, so the count does not hang on timing.
    config = replace(events_config, consumer_batch_linger=2.0)
    sent = 30
    counting = CountingSqs(sqs)
    async with counted_worker(sqlite_storage, config, counting) as worker:
        await wait_for(lambda: counting.calls["receive_message"] >= 1)  # a long poll waits
        await send_one_by_one(sqs, config, sent)
        await wait_for(lambda: worker.stats.handled == sent, timeout=30)
        # The first message comes alone (the long poll returns it at once); the
        # rest wait out one linger and come ten at a time.
        assert worker.stats.batches <= math.ceil(sent / 10) + 2
        await wait_for(lambda: depth_is(sqs, config, QUEUE, 0), timeout=10)
        counting.check_deletes(sent)
        assert worker.stats.lingered >= 1


async def test_the_first_message_after_idle_is_received_without_a_linger(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    # A linger longer than the test's deadlines: if one were waited out
    # before this message, it would not be handled in time.
    config = replace(events_config, consumer_batch_linger=600.0)
    log = ReceiveLog(sqs)
    async with counted_worker(sqlite_storage, config, log) as worker:
        # One long poll came back empty and the next one waits: the queue is idle.
        await wait_for(lambda: log.calls["receive_message"] >= 2, timeout=10)
        await send_one_by_one(sqs, config, 1)
        await wait_for(lambda: worker.stats.handled == 1, timeout=10)
        # The receive that brought it followed only empty ones, with no linger.
        assert [n for _, n in log.receives] == [0] * (len(log.receives) - 1) + [1]
        assert log.receives[-1][0] == 0
        # A lone message is a partial batch: the next receive lingers, and
        # stopping does not wait for it (counted_worker's stop deadline).
        await wait_for(lambda: worker.stats.lingered == 1, timeout=10)
