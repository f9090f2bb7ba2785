"""The outbox relay: publishes a service's pending outbox rows to SNS.

One task per service database. Each pass reads up to ``relay_batch_size *
relay_concurrency`` pending rows in commit order, publishes them in
PublishBatch calls of ``relay_batch_size`` (up to ``relay_concurrency`` calls
in flight at once) to the topic that carries their type (``type``, trace
context and correlation id as message attributes, so filter policies and
tracing work on raw delivery) and marks the published rows sent. While a
backlog exists passes follow each other without a pause. When SNS is
unreachable or a topic is missing the pass is retried through
``platform.retry`` (exponential backoff with jitter); rows stay pending, so
nothing is lost. A crash after publishing but before marking sent publishes
those rows again: consumers dedupe on the event id. Batches of one pass may
arrive out of order (SNS standard topics promise no order either).
"""

from __future__ import annotations

import asyncio
import json
import logging
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
from ec_recommend.platform.events.published_here import ORIGIN, PublishedHere
from ec_recommend.platform.events.topology import Topology, load_topology
from ec_recommend.platform.retry import Backoff, RetriesExhausted, with_retry
from ec_recommend.platform.storage import Database
from ec_recommend.platform.telemetry.messaging import publishing_batch
from ec_recommend.platform.telemetry.metrics import process_metrics

log = logging.getLogger(__name__)

SENT_RETENTION = timedelta(days=1)
_PRUNE_EVERY = 1000  # passes
_REPORT_EVERY = 5.0  # seconds between backlog metrics
# Bounded however long the backlog: the sent_at index holds the pending rows
# in seq order (seq is the rowid), so this reads at most ``limit`` rows.
_PENDING = (
    sa.select(outbox.c.seq, outbox.c.event_type, outbox.c.body)
    .where(outbox.c.sent_at.is_(None))
    .order_by(outbox.c.seq)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_MARK_SENT = (
    sa.update(outbox)
    .where(outbox.c.seq.in_(sa.bindparam("seqs", expanding=True)))
    .values(sent_at=sa.bindparam("now"))
)


class RelayUnavailable(Exception):
    """SNS cannot take the batch now; retry later."""


class OutboxRelay:
    """``async with OutboxRelay(db, config, topology):`` runs the relay task.

    ``published_here`` hears each batch SNS accepted (``published_here``);
    its ``origin``, if any, goes on every message as the ``ORIGIN`` attribute.
    """

    def __init__(
        self,
        db: Database,
        config: EventsConfig,
        topology: Topology,
        published_here: PublishedHere | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.topology = topology
        self.published_here = published_here
        origin = published_here.origin if published_here is not None else None
        self._origin = {ORIGIN: {"DataType": "String", "StringValue": origin}} if origin else {}
        self.published = 0
        self.failures = 0  # consecutive failed passes
        self._arns: dict[str, str] = {}
        self._sns: Any = None
        self._stack = AsyncExitStack()
        self._stop = asyncio.Event()
        self._nudge = asyncio.Event()  # set by wake() and on stop
        self._reported = float("-inf")
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
        self._nudge.set()
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

    def wake(self) -> None:
        """End a backoff or idle wait now (the broker is back, rows were replayed)."""
        self._nudge.set()

    @property
    def pass_size(self) -> int:
        return self.config.relay_batch_size * self.config.relay_concurrency

    async def _run(self) -> None:
        passes = 0
        backoff = Backoff(initial_delay=0.1, max_delay=self.config.relay_max_backoff, jitter=0.5)
        while not self._stop.is_set():
            passes += 1
            try:
                count = await with_retry(
                    self._pass,
                    is_retryable=lambda _exc: True,  # rows stay pending; nothing is lost by trying
                    backoff=backoff,
                    max_attempts=None,
                    may_retry=lambda: not self._stop.is_set(),
                    on_retry=self._on_retry,
                    sleep=self._sleep,
                )
            except RetriesExhausted:
                return  # stopping
            if self.failures:
                log.info("%s: publishing events again", self.db.service)
            self.failures = 0
            if passes % _PRUNE_EVERY == 0:
                await self._prune()
            if count < self.pass_size:
                await self._sleep(self.config.relay_interval)

    async def _pass(self) -> int:
        loop = asyncio.get_running_loop()
        if loop.time() - self._reported >= _REPORT_EVERY:
            self._reported = loop.time()
            with suppress(Exception):  # metrics never stop the relay
                await self.report_backlog()
        return await self.publish_pending()

    def _on_retry(self, attempt: int, exc: Exception, delay: float) -> None:
        self.failures = attempt
        expected = isinstance(exc, (RelayUnavailable, BotoCoreError, ClientError, OSError))
        if attempt == 1 or attempt % 20 == 0:
            log.warning(
                "%s: cannot publish events (%s); retrying in %.1fs",
                self.db.service,
                exc,
                delay,
                exc_info=not expected,
            )

    async def _sleep(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._nudge.wait(), timeout=seconds)
        if not self._stop.is_set():
            self._nudge.clear()

    async def publish_pending(self) -> int:
        """One pass: publish up to ``pass_size`` pending rows; returns how many were sent."""
        # On the loop's own connection on SQLite (``Database.rows``).
        rows = await self.db.rows(_PENDING, {"limit": self.pass_size})
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
        size = self.config.relay_batch_size
        batches = [
            (await self._topic_arn(name), topic_rows[i : i + size])
            for name, topic_rows in by_topic.items()
            for i in range(0, len(topic_rows), size)
        ]
        results = await asyncio.gather(
            *(self._publish(arn, batch) for arn, batch in batches), return_exceptions=True
        )
        sent: list[int] = list(orphans)
        error: BaseException | None = None
        for result in results:
            if isinstance(result, BaseException):
                error = error or result
            else:
                sent.extend(result)
        if sent:
            await self.db.write(_MARK_SENT, {"seqs": sent, "now": utcnow()})
        published = len(sent) - len(orphans)
        self.published += published
        if error is not None:
            raise error
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
                        **self._origin,
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
        sent = [int(item["Id"]) for item in response.get("Successful", [])]
        if self.published_here is not None and sent:
            accepted = set(sent)
            self.published_here.published(
                [(row.event_type, row.body) for row in rows if row.seq in accepted]
            )
        return sent

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
    config: EventsConfig,
    databases: Sequence[Database],
    published_here: PublishedHere | None = None,
) -> AsyncIterator[list[OutboxRelay]]:
    """One relay task per database, on the current event loop."""
    topology = load_topology(config.topology_path)
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(OutboxRelay(db, config, topology, published_here))
            for db in databases
        ]
