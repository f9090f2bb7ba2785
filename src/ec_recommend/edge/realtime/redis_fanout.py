"""Fan-out through Redis pub/sub.

Every gateway listens on one channel. Events reach Redis through a queue
all gateways share (``<prefix>ws-relay-queue``, competing consumers): the
gateway that receives an event publishes its body to the channel, and every
gateway, itself included, delivers it from there. Duplicates (SQS delivers at
least once) are dropped by the hub on the event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ec_recommend.config import EventsConfig
from ec_recommend.edge.realtime.fanout import OnEvent, deliver_bodies
from ec_recommend.edge.realtime.feed import QueueFeed
from ec_recommend.platform.events.aws import aws_client
from ec_recommend.platform.events.envelope import Event, encode
from ec_recommend.platform.events.topology import Topology
from ec_recommend.platform.retry import Backoff, with_retry

log = logging.getLogger(__name__)

RELAY_QUEUE = "ws-relay-queue"
_RESUBSCRIBE = Backoff(initial_delay=1.0, max_delay=1.0)  # Redis back: resubscribe soon


class RedisFanout:
    name = "redis"

    def __init__(self, redis: Redis, channel: str, on_event: OnEvent) -> None:
        self.redis = redis
        self.channel = channel
        self.on_event = on_event
        self.subscribed = False

    async def publish(self, event: Event) -> None:
        await self.redis.publish(self.channel, encode(event))

    async def publish_bodies(self, bodies: list[str]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for body in bodies:
                pipe.publish(self.channel, body)
            await pipe.execute()

    async def listen(self, tried: asyncio.Event) -> None:
        """Follow the channel until cancelled, resubscribing after an outage.

        ``tried`` is set after the first attempt, whatever its outcome;
        ``subscribed`` tells which.
        """

        async def follow() -> None:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.subscribed = True
                    tried.set()
                    async for message in pubsub.listen():
                        data = message.get("data")
                        if isinstance(data, bytes):
                            deliver_bodies(self.on_event, [data.decode("utf-8", "replace")])
            except (RedisError, OSError) as exc:
                if self.subscribed or not tried.is_set():
                    log.warning("realtime: no Redis subscription (%s); retrying", exc)
                self.subscribed = False
                tried.set()
                raise

        while True:  # a subscription that ends without an error is taken again
            await with_retry(
                follow,
                is_retryable=lambda exc: isinstance(exc, RedisError | OSError),
                backoff=_RESUBSCRIBE,
                max_attempts=None,
            )


@asynccontextmanager
async def redis_fanout(
    redis_url: str,
    on_event: OnEvent,
    *,
    events: EventsConfig | None = None,
    topology: Topology | None = None,
    retention: int = 60,
    wait_seconds: int = 5,
) -> AsyncIterator[RedisFanout]:
    """Listen on the channel; with ``events`` also relay the shared queue into it."""
    prefix = events.name_prefix if events is not None else ""
    redis = Redis.from_url(redis_url)
    fanout = RedisFanout(redis, f"{prefix}ec:realtime:events", on_event)
    tasks: list[asyncio.Task[None]] = []
    try:
        async with AsyncExitStack() as stack:
            tried = asyncio.Event()
            tasks.append(asyncio.create_task(fanout.listen(tried)))
            # start even while Redis is down: the listener keeps trying, and
            # the shared queue keeps undelivered events for redelivery
            first = asyncio.create_task(tried.wait())
            await asyncio.wait({first}, timeout=5)
            first.cancel()
            if events is not None and events.enabled and topology is not None:
                sqs: Any = await stack.enter_async_context(aws_client("sqs", events))
                sns: Any = await stack.enter_async_context(aws_client("sns", events))
                # shared and long-lived: created if missing, never removed here
                feed = QueueFeed(
                    sqs,
                    sns,
                    events,
                    topology,
                    RELAY_QUEUE,
                    retention=retention,
                    wait_seconds=wait_seconds,
                )
                await feed.create()
                tasks.append(asyncio.create_task(feed.poll(fanout.publish_bodies)))
            try:
                yield fanout
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
    finally:
        await redis.aclose()
