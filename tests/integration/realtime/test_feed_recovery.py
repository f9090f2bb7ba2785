"""A feed whose queue vanished (the local broker restarted) makes it again and goes on."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ec_recommend.config import EventsConfig
from ec_recommend.edge.realtime.feed import QueueFeed
from ec_recommend.platform.events.aws import aws_client, topic_arns
from ec_recommend.platform.events.provision import provision
from ec_recommend.platform.events.topology import load_topology
from ec_recommend.runtime.local_aws import LocalAws
from tests.conftest import events_on, wait_for

pytestmark = pytest.mark.asyncio


async def test_a_deleted_feed_queue_is_made_again_and_delivers(local_aws: LocalAws) -> None:
    events: EventsConfig = events_on(local_aws)
    topology = load_topology()
    await provision(events, topology)
    bodies: list[str] = []

    async def on_bodies(batch: list[str]) -> None:
        bodies.extend(batch)

    async with aws_client("sqs", events) as sqs, aws_client("sns", events) as sns:
        feed = QueueFeed(
            sqs, sns, events, topology, f"feed-{uuid.uuid4().hex[:6]}", retention=60, wait_seconds=1
        )
        await feed.create()
        old = list(feed.subscriptions)
        # What a restart of the local broker does: the queue and its subscriptions are gone.
        for arn in old:
            await sns.unsubscribe(SubscriptionArn=arn)
        await sqs.delete_queue(QueueUrl=feed.url)
        poller = asyncio.create_task(feed.poll(on_bodies))
        try:
            await wait_for(
                lambda: (
                    len(feed.subscriptions) == len(old) and not set(feed.subscriptions) & set(old)
                ),
                timeout=30,
            )
            arn = (await topic_arns(sns, events))["order-events"]
            message = '{"marker": "after"}'
            attributes = {"type": {"DataType": "String", "StringValue": "order.paid"}}
            await sns.publish(TopicArn=arn, Message=message, MessageAttributes=attributes)
            await wait_for(lambda: message in bodies, timeout=30)
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
            await feed.remove()
