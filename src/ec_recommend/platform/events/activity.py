"""``analytics.user_activity`` from the gateway, without slowing requests.

``ActivitySender.record(...)`` only appends to a bounded in-memory buffer and
returns; a background task sends what accumulated to the analytics queue with
SendMessageBatch (up to 10 per call). Activity is best-effort telemetry: when
the buffer is full (SQS down for long) new activity is dropped and counted
rather than blocking or growing memory without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack, suppress
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend.config import EventsConfig
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.events.aws import aws_client, queue_url
from ec_recommend.platform.events.envelope import encode, new_event
from ec_recommend.platform.retry import Backoff, with_retry

log = logging.getLogger(__name__)

ACTIVITY_TYPE = "analytics.user_activity"
ANALYTICS_QUEUE = "analytics-event-queue"
ACTIVITIES = ("product_view", "search")
# A batch waits for SQS as long as it takes; the bounded buffer absorbs the rest.
_BACKOFF = Backoff(initial_delay=0.2, max_delay=10.0)


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
        self.sent = 0
        self.dropped = 0
        self._buffer: asyncio.Queue[str] = asyncio.Queue(maxsize=capacity)
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
            with suppress(TimeoutError):
                await asyncio.wait_for(self._buffer.join(), timeout=2)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._stack.aclose()

    def product_view(self, *, product_id: str, user_id: str = "", session_id: str = "") -> None:
        self.record("product_view", user_id=user_id, session_id=session_id, product_id=product_id)

    def search(self, *, query: str, user_id: str = "", session_id: str = "") -> None:
        self.record("search", user_id=user_id, session_id=session_id, query=query[:256])

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
        if self._closing:
            self.dropped += 1
            return
        data = pb.UserActivity(
            user_id=user_id,
            session_id=session_id,
            activity=activity,
            product_id=product_id,
            query=query,
            occurred_at=occurred_at or utcnow(),
        )
        try:
            self._buffer.put_nowait(encode(new_event(ACTIVITY_TYPE, data, source=self.source)))
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("activity buffer full; %d activities dropped so far", self.dropped)

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
            batch = [await self._buffer.get()]
            while len(batch) < 10 and not self._buffer.empty():
                batch.append(self._buffer.get_nowait())
            try:
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
                for _ in batch:
                    self._buffer.task_done()

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
