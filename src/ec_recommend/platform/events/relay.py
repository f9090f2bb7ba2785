"""The outbox relay: publishes a service's pending outbox rows to SNS.

One task per service database. Each pass reads up to ``relay_batch_size``
pending rows in commit order, publishes them with PublishBatch to the topic
that carries their type (``type``, trace context and correlation id as
message attributes, so filter policies and tracing work on raw delivery) and
marks the published rows sent. When SNS is unreachable or a topic is missing
it retries with exponential backoff and full jitter; rows stay pending, so
nothing is lost. A crash after publishing but before marking sent publishes
those rows again: consumers dedupe on the event id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from datetime import timedelta
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from botocore.exceptions import BotoCoreError, ClientError

from ec_recommend.config import EventsConfig
from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.events.aws import aws_client, topic_arns
from ec_recommend.platform.events.envelope import CORRELATION_ID, TRACEPARENT, TRACESTATE
from ec_recommend.platform.events.outbox import outbox
from ec_recommend.platform.events.topology import Topology, load_topology
from ec_recommend.platform.storage import Database
from ec_recommend.platform.telemetry.messaging import publishing_batch
from ec_recommend.platform.telemetry.metrics import process_metrics

log = logging.getLogger(__name__)

SENT_RETENTION = timedelta(days=1)
_PRUNE_EVERY = 1000  # passes
_REPORT_EVERY = 5.0  # seconds between backlog metrics


class RelayUnavailable(Exception):
    """SNS cannot take the batch now; retry later."""


class OutboxRelay:
    """``async with OutboxRelay(db, config, topology):`` runs the relay task."""

    def __init__(self, db: Database, config: EventsConfig, topology: Topology) -> None:
        self.db = db
        self.config = config
        self.topology = topology
        self.published = 0
        self.failures = 0  # consecutive failed passes
        self._arns: dict[str, str] = {}
        self._sns: Any = None
        self._stack = AsyncExitStack()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> OutboxRelay:
        self._sns = await self._stack.enter_async_context(
            aws_client("sns", self.config, fail_fast=True)
        )
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.db.service}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                # The current pass finishes; a backoff sleep ends at once.
                await asyncio.wait_for(self._task, timeout=5)
            except TimeoutError:
                log.warning("%s: outbox relay did not stop in time", self.db.service)
        await self._stack.aclose()

    async def pending(self) -> int:
        async with self.db.reading() as conn:
            query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            return int((await conn.execute(query)).scalar_one())

    async def report_backlog(self) -> None:
        """Backlog size and age of the oldest pending event, as metrics."""
        async with self.db.reading() as conn:
            row = (
                await conn.execute(
                    sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(
                        outbox.c.sent_at.is_(None)
                    )
                )
            ).one()
        age = 0.0 if row[1] is None else (utcnow() - aware(row[1])).total_seconds()
        process_metrics().outbox_state(self.db.service, int(row[0]), age)

    async def pending_is(self, count: int) -> bool:
        return await self.pending() == count

    async def _run(self) -> None:
        passes = 0
        loop = asyncio.get_running_loop()
        reported = 0.0
        while not self._stop.is_set():
            passes += 1
            if loop.time() - reported >= _REPORT_EVERY:
                reported = loop.time()
                with suppress(Exception):  # metrics never stop the relay
                    await self.report_backlog()
            try:
                count = await self.publish_pending()
            except (RelayUnavailable, BotoCoreError, ClientError, OSError) as exc:
                self.failures += 1
                delay = random.uniform(
                    0, min(self.config.relay_max_backoff, 0.1 * 2**self.failures)
                )
                if self.failures == 1 or self.failures % 20 == 0:
                    log.warning(
                        "%s: cannot publish events (%s); retrying with backoff",
                        self.db.service,
                        exc,
                    )
                await self._sleep(delay)
                continue
            except Exception:
                self.failures += 1
                log.exception("%s: outbox relay pass failed", self.db.service)
                await self._sleep(self.config.relay_max_backoff)
                continue
            if self.failures:
                log.info("%s: publishing events again", self.db.service)
            self.failures = 0
            if passes % _PRUNE_EVERY == 0:
                await self._prune()
            if count < self.config.relay_batch_size:
                await self._sleep(self.config.relay_interval)

    async def _sleep(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def publish_pending(self) -> int:
        """One pass: publish up to a batch of pending rows; returns how many were sent."""
        async with self.db.reading() as conn:
            rows = (
                await conn.execute(
                    sa.select(outbox.c.seq, outbox.c.event_type, outbox.c.body)
                    .where(outbox.c.sent_at.is_(None))
                    .order_by(outbox.c.seq)
                    .limit(self.config.relay_batch_size)
                )
            ).all()
        if not rows:
            return 0
        by_topic: dict[str, list[Any]] = {}
        orphans: list[int] = []
        for row in rows:
            topic = self.topology.topic_for(row.event_type)
            if topic is None:
                orphans.append(row.seq)
            else:
                by_topic.setdefault(topic.name, []).append(row)
        if orphans:
            log.error("%s: no topic carries events %s; dropped", self.db.service, orphans)
        sent: list[int] = list(orphans)
        for topic_name, topic_rows in by_topic.items():
            sent.extend(await self._publish(await self._topic_arn(topic_name), topic_rows))
        if sent:
            async with self.db.unit_of_work() as uow:
                await uow.execute(
                    sa.update(outbox).where(outbox.c.seq.in_(sent)).values(sent_at=utcnow())
                )
                await uow.commit()
        published = len(sent) - len(orphans)
        self.published += published
        if len(sent) < len(rows):
            raise RelayUnavailable(f"{len(rows) - len(sent)} of {len(rows)} events not accepted")
        return published

    async def _topic_arn(self, name: str) -> str:
        if name not in self._arns:
            self._arns = await topic_arns(self._sns, self.config)
        if name not in self._arns:
            raise RelayUnavailable(f"topic {self.config.name_prefix}{name} does not exist")
        return self._arns[name]

    async def _publish(self, topic_arn: str, rows: list[Any]) -> list[int]:
        with publishing_batch(topic_arn, {str(row.seq): row.body for row in rows}) as spans:
            entries = [
                {
                    "Id": str(row.seq),
                    "Message": row.body,
                    # The producer span's context replaces the stored one.
                    "MessageAttributes": {
                        **_attributes(row.event_type, row.body),
                        **spans.attributes(str(row.seq)),
                    },
                }
                for row in rows
            ]
            response = await self._sns.publish_batch(
                TopicArn=topic_arn, PublishBatchRequestEntries=entries
            )
            for failure in response.get("Failed", []):
                spans.failed(str(failure.get("Id")), str(failure.get("Code", "failed")))
                log.warning(
                    "%s: event %s not published: %s", self.db.service, failure.get("Id"), failure
                )
        return [int(item["Id"]) for item in response.get("Successful", [])]

    async def _prune(self) -> None:
        async with self.db.unit_of_work() as uow:
            await uow.execute(sa.delete(outbox).where(outbox.c.sent_at < utcnow() - SENT_RETENTION))
            await uow.commit()


def _attributes(event_type: str, body: str) -> dict[str, dict[str, str]]:
    attributes = {"type": {"DataType": "String", "StringValue": event_type}}
    metadata = json.loads(body).get("metadata") or {}
    for key in (TRACEPARENT, TRACESTATE, CORRELATION_ID):
        value = metadata.get(key)
        if isinstance(value, str) and value:
            attributes[key] = {"DataType": "String", "StringValue": value}
    return attributes


@asynccontextmanager
async def outbox_relays(
    config: EventsConfig, databases: Sequence[Database]
) -> AsyncIterator[list[OutboxRelay]]:
    """One relay task per database, on the current event loop."""
    topology = load_topology(config.topology_path)
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(OutboxRelay(db, config, topology)) for db in databases
        ]
