"""Fan-out through an SQS queue per gateway process.

Queue ``<prefix>ws-gw-<start time>-<random>``: subscribed to the pushed event
types on start, unsubscribed and deleted on clean shutdown. Messages live
``retention`` seconds (SQS's minimum is 60), so a dead process's queue does not
pile up; its ``ec-heartbeat`` tag stops moving, and any gateway sweeps queues
whose heartbeat is older than ``instance_ttl`` (with their subscriptions).

With ``published_here`` (this process hosts services too, not all of them)
what this process's relays publish is heard in-process, and the queue's
subscriptions leave their origin out: no receive, delete or decode for it,
while what other processes publish still arrives through the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ec_recommend.config import EventsConfig
from ec_recommend.edge.realtime.fanout import OnEvent, deliver_bodies, pushed_heard
from ec_recommend.edge.realtime.feed import QueueFeed, pushed_routes
from ec_recommend.platform.events.aws import aws_client, prefixed, topic_arns
from ec_recommend.platform.events.envelope import Event, encode
from ec_recommend.platform.events.published_here import PublishedHere
from ec_recommend.platform.events.topology import Topology

log = logging.getLogger(__name__)

INSTANCE_PREFIX = "ws-gw-"
HEARTBEAT_TAG = "ec-heartbeat"
ROLE_TAG = "ec-role"


class SqsFanout:
    name = "sqs"

    def __init__(
        self,
        sqs: Any,
        sns: Any,
        config: EventsConfig,
        topology: Topology,
        on_event: OnEvent,
        *,
        retention: int = 60,
        instance_ttl: float = 120.0,
        wait_seconds: int = 5,
        clock: Any = time.time,
        leave_out_origin: str | None = None,
    ) -> None:
        self.sqs = sqs
        self.sns = sns
        self.config = config
        self.topology = topology
        self.on_event = on_event
        self.instance_ttl = instance_ttl
        self.clock = clock
        started = int(clock())
        self.feed = QueueFeed(
            sqs,
            sns,
            config,
            topology,
            f"{INSTANCE_PREFIX}{started}-{uuid.uuid4().hex[:12]}",
            retention=retention,
            tags={ROLE_TAG: "realtime-gateway", HEARTBEAT_TAG: str(started)},
            wait_seconds=wait_seconds,
            leave_out_origin=leave_out_origin,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._arns: dict[str, str] = {}

    @property
    def queue_name(self) -> str:
        return self.feed.name

    async def start(self) -> None:
        await self.sweep()
        await self.feed.create()
        self._tasks = [
            asyncio.create_task(self.feed.poll(self._deliver)),
            asyncio.create_task(self._beat()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.feed.remove()

    async def _deliver(self, bodies: list[str]) -> None:
        deliver_bodies(self.on_event, bodies)

    async def publish(self, event: Event) -> None:
        topic = self.topology.topic_for(event.type)
        if topic is None:
            raise ValueError(f"no topic carries {event.type}")
        if topic.name not in self._arns:
            self._arns = await topic_arns(self.sns, self.config)
        await self.sns.publish(
            TopicArn=self._arns[topic.name],
            Message=encode(event),
            MessageAttributes={"type": {"DataType": "String", "StringValue": event.type}},
        )

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.instance_ttl / 4)
            try:
                await self.sqs.tag_queue(
                    QueueUrl=self.feed.url, Tags={HEARTBEAT_TAG: str(int(self.clock()))}
                )
                await self.sweep()
            except (BotoCoreError, ClientError, OSError) as exc:
                log.warning("realtime: heartbeat of %s failed: %s", self.queue_name, exc)

    async def sweep(self) -> list[str]:
        """Delete other instances' queues whose heartbeat is older than the TTL."""
        response = await self.sqs.list_queues(
            QueueNamePrefix=prefixed(self.config, INSTANCE_PREFIX)
        )
        swept = []
        for url in response.get("QueueUrls", []):
            if url == self.feed.url:
                continue
            try:
                tags = (await self.sqs.list_queue_tags(QueueUrl=url)).get("Tags", {})
                beat = float(tags.get(HEARTBEAT_TAG, "0"))
                if self.clock() - beat <= self.instance_ttl:
                    continue
                await self._remove_stale(url)
                swept.append(url.rsplit("/", 1)[-1])
            except (BotoCoreError, ClientError, ValueError) as exc:
                log.info("realtime: could not sweep %s: %s", url, exc)
        if swept:
            log.info("realtime: swept stale gateway queues %s", swept)
        return swept

    async def _remove_stale(self, url: str) -> None:
        attributes = await self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        queue_arn = attributes["Attributes"]["QueueArn"]
        arns = await topic_arns(self.sns, self.config)
        for topic in pushed_routes(self.topology):
            if topic not in arns:
                continue
            paginator = self.sns.get_paginator("list_subscriptions_by_topic")
            async for page in paginator.paginate(TopicArn=arns[topic]):
                for sub in page.get("Subscriptions", []):
                    if sub.get("Endpoint") == queue_arn:
                        await self.sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
        await self.sqs.delete_queue(QueueUrl=url)


@asynccontextmanager
async def sqs_fanout(
    config: EventsConfig,
    topology: Topology,
    on_event: OnEvent,
    *,
    retention: int = 60,
    instance_ttl: float = 120.0,
    wait_seconds: int = 5,
    published_here: PublishedHere | None = None,
) -> AsyncIterator[SqsFanout]:
    origin: str | None = None
    hearing: AbstractContextManager[None] = nullcontext()
    if published_here is not None and published_here.origin is not None:
        origin = published_here.origin
        hearing = published_here.listening(pushed_heard(on_event))
    async with aws_client("sqs", config) as sqs, aws_client("sns", config) as sns:
        fanout = SqsFanout(
            sqs,
            sns,
            config,
            topology,
            on_event,
            retention=retention,
            instance_ttl=instance_ttl,
            wait_seconds=wait_seconds,
            leave_out_origin=origin,
        )
        await fanout.start()
        try:
            with hearing:
                yield fanout
        finally:
            await fanout.stop()
