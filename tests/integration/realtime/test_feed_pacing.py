"""A push feed paces its receives as consumers do: fuller batches under a trickle."""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

import pytest

from ec_recommend.config import EventsConfig
from ec_recommend.edge.realtime.feed import QueueFeed
from ec_recommend.platform.events.aws import aws_client, topic_arns
from ec_recommend.platform.events.provision import provision
from ec_recommend.platform.events.topology import Topology, load_topology
from ec_recommend.runtime.local_aws import LocalAws
from tests.conftest import events_on, wait_for

pytestmark = pytest.mark.asyncio

PAID = {"type": {"DataType": "String", "StringValue": "order.paid"}}


async def _publish(sns: Any, events: EventsConfig, count: int) -> None:
    """``count`` order.paid pushes, one by one."""
    arn = (await topic_arns(sns, events))["order-events"]
    for n in range(count):
        await sns.publish(TopicArn=arn, Message=f'{{"n": {n}}}', MessageAttributes=PAID)


def _feed(
    sqs: Any, sns: Any, events: EventsConfig, topology: Topology, **options: Any
) -> QueueFeed:
    name = f"feed-{uuid.uuid4().hex[:6]}"
    return QueueFeed(sqs, sns, events, topology, name, retention=60, wait_seconds=1, **options)


@pytest.mark.parametrize(("linger", "most_batches"), [(2.0, math.ceil(30 / 10) + 2), (0.0, None)])
async def test_a_trickle_of_pushes_is_received_in_full_batches(
    local_aws: LocalAws, linger: float, most_batches: int | None
) -> None:
    """Pushes published one by one: after the first, each receive waits a
    linger (far longer than publishing takes, so the count does not hang on
    timing) and brings ten. Without a linger every push arrives, however."""
    events = events_on(local_aws, consumer_batch_linger=linger)
    topology = load_topology()
    await provision(events, topology)
    batches: list[int] = []

    async def on_bodies(bodies: list[str]) -> None:
        batches.append(len(bodies))

    sent = 30
    async with aws_client("sqs", events) as sqs, aws_client("sns", events) as sns:
        feed = _feed(sqs, sns, events, topology)
        await feed.create()
        poller = asyncio.create_task(feed.poll(on_bodies))
        try:
            await _publish(sns, events, sent)
            await wait_for(lambda: sum(batches) == sent, timeout=30)
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
            await feed.remove()
    if most_batches is not None:
        assert len(batches) <= most_batches, batches


async def test_handed_over_pushes_are_deleted_ten_a_call_and_at_a_stop(
    local_aws: LocalAws,
) -> None:
    """Receipts wait to share a DeleteMessageBatch (here longer than the test),
    so 25 pushes, however many receives bring them, cost two calls of ten
    while polling and one of five when the feed stops; none comes back."""
    events = events_on(local_aws, consumer_batch_linger=0.0)
    topology = load_topology()
    await provision(events, topology)
    handed: list[int] = []
    deleted: list[int] = []

    async def on_bodies(bodies: list[str]) -> None:
        handed.append(len(bodies))

    sent = 25
    async with aws_client("sqs", events) as sqs, aws_client("sns", events) as sns:
        real_delete = sqs.delete_message_batch

        async def delete_message_batch(**kwargs: Any) -> Any:
            deleted.append(len(kwargs["Entries"]))
            return await real_delete(**kwargs)

        sqs.delete_message_batch = delete_message_batch
        feed = _feed(sqs, sns, events, topology, delete_delay=600.0)
        await feed.create()
        poller = asyncio.create_task(feed.poll(on_bodies))
        try:
            await _publish(sns, events, sent)
            await wait_for(lambda: sum(handed) == sent and len(deleted) == 2, timeout=30)
            assert deleted == [10, 10]
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
        assert deleted == [10, 10, 5]
        depths = await sqs.get_queue_attributes(
            QueueUrl=feed.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        assert {int(v) for v in depths["Attributes"].values()} == {0}
        await feed.remove()
