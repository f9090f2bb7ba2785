"""``analytics.user_activity`` from the gateway, without slowing requests.

``ActivitySender.record(...)`` (and ``product_view``/``search``) only append
a small tuple to a bounded in-memory buffer and return: a product GET pays
well under 10 us for its activity. A background task turns what accumulated
into event envelopes (``envelope.encode``) and sends them to the analytics
queue with SendMessageBatch (up to 10 per call), so building and encoding
happen off the request path. Activity is best-effort telemetry: when the
buffer is full (SQS down for long) new activity is dropped and counted
rather than blocking or growing memory without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend.config import EventsConfig
from ec_recommend.platform.events.aws import aws_client, queue_url
from ec_recommend.platform.events.envelope import encode, new_event
from ec_recommend.platform.retry import Backoff, with_retry

log = logging.getLogger(__name__)

ACTIVITY_TYPE = "analytics.user_activity"
ANALYTICS_QUEUE = "analytics-event-queue"
ACTIVITIES = ("product_view", "search")
# A batch waits for SQS as long as it takes; the bounded buffer absorbs the rest.
_BACKOFF = Backoff(initial_delay=0.2, max_delay=10.0)
_BATCH = 10  # SendMessageBatch's limit
_DRAIN_TIMEOUT = 2.0  # seconds what is buffered gets to go out at close

# (activity, user_id, session_id, product_id, query, occurred_at as Unix time):
# what a request pays for is appending this; the sender builds the event.
_Record = tuple[str, str, str, str, str, float]


class ActivitySender:
    """``async with ActivitySender(config) as sender: sender.product_view(...)``."""

    def __init__(
        self,
        config: EventsConfig,
        *,
        queues: Sequence[str] = (ANALYTICS_QUEUE,),
        capacity: int = 10_000,
        source: str = "gateway",
    ) -> None:
        self.config = config
        self.queues = tuple(queues)
        self.source = source
        self.capacity = capacity
        self.sent = 0
        self.dropped = 0
        self._pending: deque[_Record] = deque()
        self._sending = 0  # records taken from the buffer, not yet sent
        self._wakeup = asyncio.Event()
        self._stack = AsyncExitStack()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def __aenter__(self) -> ActivitySender:
        sqs = await self._stack.enter_async_context(aws_client("sqs", self.config, fail_fast=True))
        self._task = asyncio.create_task(self._send_loop(sqs), name="activity-sender")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        if self._task is not None:
            # Give what is buffered a moment to go out, then stop.
            deadline = time.monotonic() + _DRAIN_TIMEOUT
            while (self._pending or self._sending) and time.monotonic() < deadline:
                if self._task.done():
                    break
                await asyncio.sleep(0.01)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._stack.aclose()

    def product_view(self, *, product_id: str, user_id: str = "", session_id: str = "") -> None:
        """The hot one (every product GET): append, nothing else."""
        self._append(("product_view", user_id, session_id, product_id, "", time.time()))

    def search(self, *, query: str, user_id: str = "", session_id: str = "") -> None:
        self._append(("search", user_id, session_id, "", query[:256], time.time()))

    def record(
        self,
        activity: str,
        *,
        user_id: str = "",
        session_id: str = "",
        product_id: str = "",
        query: str = "",
        occurred_at: datetime | None = None,
    ) -> None:
        """Queue one activity; never blocks, never raises for a full buffer."""
        if activity not in ACTIVITIES:
            raise ValueError(f"unknown activity {activity!r}")
        when = time.time() if occurred_at is None else occurred_at.timestamp()
        self._append((activity, user_id, session_id, product_id, query, when))

    def _append(self, record: _Record) -> None:
        if self._closing or len(self._pending) >= self.capacity:
            self.dropped += 1
            if not self._closing and self.dropped % 1000 == 1:
                log.warning("activity buffer full; %d activities dropped so far", self.dropped)
            return
        self._pending.append(record)
        if not self._wakeup.is_set():
            self._wakeup.set()

    def _envelope(self, record: _Record) -> str:
        activity, user_id, session_id, product_id, query, occurred = record
        data = pb.UserActivity(
            user_id=user_id,
            session_id=session_id,
            activity=activity,
            product_id=product_id,
            query=query,
            occurred_at=datetime.fromtimestamp(occurred, UTC),
        )
        return encode(new_event(ACTIVITY_TYPE, data, source=self.source))

    def encode_pending(self) -> list[str]:
        """Take everything buffered as encoded envelopes (the bench times the sender's share)."""
        bodies = [self._envelope(record) for record in self._pending]
        self._pending.clear()
        return bodies

    async def _next_batch(self) -> list[_Record]:
        while not self._pending:
            self._wakeup.clear()
            await self._wakeup.wait()
        count = min(_BATCH, len(self._pending))
        return [self._pending.popleft() for _ in range(count)]

    async def _send_loop(self, sqs: Any) -> None:
        urls: dict[str, str] = {}

        async def send(queue: str, batch: list[str]) -> None:
            if queue not in urls:
                urls[queue] = await queue_url(sqs, self.config, queue)
            await self._send(sqs, urls[queue], batch)

        def on_retry(attempt: int, exc: Exception, delay: float) -> None:
            urls.clear()  # the queue may have been recreated (a restarted broker)
            if attempt == 1:
                log.warning("cannot send user activity (%s); retrying", exc)

        while True:
            records = await self._next_batch()
            self._sending = len(records)
            try:
                batch = [self._envelope(record) for record in records]
                for queue in self.queues:
                    await with_retry(
                        partial(send, queue, batch),
                        is_retryable=_unavailable,
                        backoff=_BACKOFF,
                        max_attempts=None,
                        on_retry=on_retry,
                    )
                self.sent += len(batch)
            finally:
                self._sending = 0

    async def _send(self, sqs: Any, url: str, bodies: list[str]) -> None:
        entries = [
            {
                "Id": str(i),
                "MessageBody": body,
                "MessageAttributes": {"type": {"DataType": "String", "StringValue": ACTIVITY_TYPE}},
            }
            for i, body in enumerate(bodies)
        ]
        response = await sqs.send_message_batch(QueueUrl=url, Entries=entries)
        for failure in response.get("Failed", []):
            log.warning("user activity not sent: %s", failure)


def _unavailable(exc: Exception) -> bool:
    return isinstance(exc, (BotoCoreError, ClientError, OSError))
