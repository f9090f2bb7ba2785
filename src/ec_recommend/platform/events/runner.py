"""Run several consumers on one event loop, sharing one SQS client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ec_recommend.config import EventsConfig, StorageConfig
from ec_recommend.platform.events.aws import aws_client, queue_url
from ec_recommend.platform.events.consumer import Subscription
from ec_recommend.platform.events.inbox import ensure_inbox
from ec_recommend.platform.events.topology import TopologyError, load_topology
from ec_recommend.platform.events.worker import ConsumerWorker
from ec_recommend.platform.security.identity import acting_as
from ec_recommend.platform.storage import open_database
from ec_recommend.platform.storage.engines import CONSUMERS_POOL
from ec_recommend.platform.telemetry.metrics import process_metrics

log = logging.getLogger(__name__)

_DLQ_WATCH_INTERVAL = 30.0


@asynccontextmanager
async def running_consumers(
    storage: StorageConfig, events: EventsConfig, subscriptions: Sequence[Subscription]
) -> AsyncIterator[list[ConsumerWorker]]:
    """Start a worker per subscription; on exit stop receiving and drain them all.

    Each subscription's database is opened (and migrated, with its inbox) here,
    so the handlers' units of work and the inbox share one transaction.
    """
    names = [s.name for s in subscriptions]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate consumer names in {names}")
    async with AsyncExitStack() as stack:
        # Per worker: its long poll, the acknowledgements of the batches in
        # flight (small batches when the queue is quiet), its keeper. They are
        # opened on demand and kept alive, so a quiet worker holds few.
        pool = 8 * len(subscriptions) or 1
        sqs = await stack.enter_async_context(aws_client("sqs", events, pool=pool))
        workers = []
        for subscription in subscriptions:
            db = await stack.enter_async_context(
                open_database(
                    storage,
                    subscription.database,
                    subscription.migrations,
                    pool_group=CONSUMERS_POOL,
                )
            )
            await ensure_inbox(db)
            workers.append(ConsumerWorker(subscription, db, sqs, events))
        tasks = [start_worker(w) for w in workers]
        watcher = asyncio.create_task(_watch_dlqs(sqs, events, workers), name="dlq-depths")
        try:
            await asyncio.gather(*(w.wait_ready() for w in workers))
            yield workers
        finally:
            watcher.cancel()
            log.info(
                "stopping %d consumer(s): waiting out their long polls (up to %d s) "
                "and the batches in hand (up to %.0f s)",
                len(workers),
                events.consumer_wait_seconds,
                events.shutdown_grace,
            )
            for worker in workers:
                worker.stop()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(watcher, return_exceptions=True)
            for worker, result in zip(workers, results, strict=True):
                if isinstance(result, BaseException):
                    log.error("consumer %s stopped with %r", worker.name, result)


def start_worker(worker: ConsumerWorker) -> asyncio.Task[None]:
    """Run ``worker`` as a task that acts as its consumer.

    Everything the task runs inherits the identity: the handlers' calls present
    the consumer's own certificate, not the process's (nor the gateway's).
    """
    with acting_as(worker.subscription.identity or worker.name):
        return asyncio.create_task(worker.run(), name=f"consumer-{worker.name}")


async def _watch_dlqs(sqs: Any, events: EventsConfig, workers: Sequence[ConsumerWorker]) -> None:
    """Keep ``dlq_depth`` current for the queues these workers consume."""
    topology = load_topology(events.topology_path)
    metrics = process_metrics()
    while True:
        for worker in workers:
            try:
                dlq = topology.queue(worker.subscription.queue).dlq
                url = await queue_url(sqs, events, dlq)
                attrs = await sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )
                metrics.dlq_messages(dlq, int(attrs["Attributes"]["ApproximateNumberOfMessages"]))
            except (TopologyError, BotoCoreError, ClientError, OSError) as exc:
                log.debug("dlq depth of %s unavailable: %s", worker.name, exc)
        await asyncio.sleep(_DLQ_WATCH_INTERVAL)
