"""Fan-out across gateway processes: two hubs, an event entering through one
path, the subscriber on the other hub receives it (SQS on moto, real Redis)."""

from __future__ import annotations

import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend.config import Config, EventsConfig, RealtimeConfig, StorageConfig
from ec_recommend.edge.realtime.handler import Realtime
from ec_recommend.edge.realtime.hub import Connection
from ec_recommend.edge.realtime.metrics import CountingMetrics
from ec_recommend.edge.realtime.setup import open_realtime
from ec_recommend.edge.realtime.sqs_fanout import HEARTBEAT_TAG, INSTANCE_PREFIX, SqsFanout
from ec_recommend.platform.events.aws import aws_client, prefixed
from ec_recommend.platform.events.envelope import Event, new_event
from ec_recommend.platform.events.outbox import outbox_migration, record_event
from ec_recommend.platform.events.provision import provision
from ec_recommend.platform.events.published_here import PublishedHere
from ec_recommend.platform.events.relay import OutboxRelay
from ec_recommend.platform.events.topology import load_topology
from ec_recommend.platform.storage import Database, open_database
from ec_recommend.runtime.local_aws import LocalAws
from tests.conftest import events_on, wait_for

pytestmark = pytest.mark.asyncio

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest_asyncio.fixture
async def events(local_aws: LocalAws) -> EventsConfig:
    config = events_on(
        local_aws,
        consumer_wait_seconds=1,
    )
    await provision(config, load_topology())
    return config


def paid(user_id: str) -> Event:
    order = pb_order.Order(id=str(uuid.uuid4()), user_id=user_id, status="PAID")
    return new_event("order.paid", pb.OrderPaid(order=order), source="test")


async def two_gateways(stack: AsyncExitStack, config: Config) -> tuple[Realtime, Realtime]:
    a = await stack.enter_async_context(open_realtime(config, CountingMetrics()))
    b = await stack.enter_async_context(open_realtime(config, CountingMetrics()))
    return a, b


def follow_orders(realtime: Realtime, user_id: str) -> Connection:
    connection = realtime.hub.register(user_id)
    realtime.hub.subscribe(connection, "orders")
    return connection


def received(connection: Connection) -> list[dict[str, Any]]:
    return [orjson.loads(f) for f in connection.queued() if b"order.status_changed" in f]


async def instance_queues(events: EventsConfig) -> list[str]:
    async with aws_client("sqs", events) as sqs:
        response = await sqs.list_queues(QueueNamePrefix=prefixed(events, INSTANCE_PREFIX))
        return list(response.get("QueueUrls", []))


async def test_sqs_queue_per_gateway_delivers_across_gateways(events: EventsConfig) -> None:
    config = Config(events=events, realtime=RealtimeConfig(backend="sqs"))
    async with AsyncExitStack() as stack:
        a, b = await two_gateways(stack, config)
        assert a.fanout is not None and b.fanout is not None and a.fanout.name == "sqs"
        queues = await instance_queues(events)
        assert len(queues) == 2  # one each, expiring: messages live 60 s, a heartbeat tag
        async with aws_client("sqs", events) as sqs:
            for url in queues:
                attributes = await sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["MessageRetentionPeriod"]
                )
                assert attributes["Attributes"]["MessageRetentionPeriod"] == "60"
                assert HEARTBEAT_TAG in (await sqs.list_queue_tags(QueueUrl=url))["Tags"]
        alice = follow_orders(a, "alice")
        bob = follow_orders(b, "bob")
        event = paid("alice")
        await b.fanout.publish(event)  # into SNS, as the order service's relay does
        await wait_for(lambda: received(alice), timeout=15)
        assert [m["event_id"] for m in received(alice)] == [event.id]
        assert received(bob) == []
    assert await instance_queues(events) == []  # clean shutdown removes them


async def test_a_dead_gateways_queue_is_swept(events: EventsConfig) -> None:
    async with aws_client("sqs", events) as sqs:
        stale = prefixed(events, f"{INSTANCE_PREFIX}1-deadbeef")
        await sqs.create_queue(QueueName=stale, tags={HEARTBEAT_TAG: str(int(time.time()) - 3600)})
        fresh = prefixed(events, f"{INSTANCE_PREFIX}2-alive")
        await sqs.create_queue(QueueName=fresh, tags={HEARTBEAT_TAG: str(int(time.time()))})
    config = Config(events=events, realtime=RealtimeConfig(backend="sqs"))
    async with open_realtime(config, CountingMetrics()):
        names = [url.rsplit("/", 1)[-1] for url in await instance_queues(events)]
        assert stale not in names and fresh in names


async def test_redis_pubsub_delivers_across_gateways(events: EventsConfig) -> None:
    config = Config(events=events, realtime=RealtimeConfig(backend="redis", redis_url=REDIS_URL))
    async with AsyncExitStack() as stack:
        a, b = await two_gateways(stack, config)
        assert a.fanout is not None and b.fanout is not None and a.fanout.name == "redis"
        alice, bob = follow_orders(a, "alice"), follow_orders(a, "bob")
        direct = paid("alice")
        await b.fanout.publish(direct)  # straight onto the channel from gateway B
        await wait_for(lambda: len(received(alice)) == 1, timeout=10)
        via_sns = paid("alice")  # the domain path: SNS -> shared queue -> Redis
        sns_fanout_config = replace(config, realtime=RealtimeConfig(backend="sqs"))
        async with open_realtime(sns_fanout_config, CountingMetrics()) as publisher:
            assert publisher.fanout is not None
            await publisher.fanout.publish(via_sns)
            await wait_for(lambda: len(received(alice)) == 2, timeout=15)
        assert [m["event_id"] for m in received(alice)] == [direct.id, via_sns.id]
        assert received(bob) == []


async def test_a_gateway_hosted_with_publishers_hears_their_events_here_not_from_its_queue(
    events: EventsConfig, tmp_path: Path
) -> None:
    """``serve gateway order ...``: the relays of the gateway's own process are
    heard in-process and left out of its queue; other processes' events (a
    relay elsewhere, a tool publishing unmarked) still come through the queue."""
    topology = load_topology()
    here, elsewhere = PublishedHere(complete=False), PublishedHere(complete=False)
    config = Config(events=events)  # backend auto: a queue of its own, with ``here``
    storage = StorageConfig(data_dir=tmp_path / "data")
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(
            open_realtime(config, CountingMetrics(), published_here=here)
        )
        b = await stack.enter_async_context(open_realtime(config, CountingMetrics()))
        assert isinstance(a.fanout, SqsFanout) and isinstance(b.fanout, SqsFanout)
        dbs = [
            await stack.enter_async_context(open_database(storage, name, [outbox_migration(1)]))
            for name in ("order-here", "order-elsewhere")
        ]
        for db, published_here in zip(dbs, (here, elsewhere), strict=True):
            await stack.enter_async_context(OutboxRelay(db, events, topology, published_here))
        on_a, on_b = follow_orders(a, "alice"), follow_orders(b, "alice")

        def ids(connection: Connection) -> list[str]:
            return [m["event_id"] for m in received(connection)]

        mine = await record_paid(dbs[0], "alice")
        # B's queue has it, and A heard it in-process: after SNS accepted the
        # batch, so possibly after B's queue delivered it.
        await wait_for(lambda: ids(on_b) == [mine] and ids(on_a) == [mine], timeout=15)
        assert a.fanout.feed.received == 0
        async with aws_client("sqs", events) as sqs:
            depth = await sqs.get_queue_attributes(
                QueueUrl=a.fanout.feed.url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )
        assert set(depth["Attributes"].values()) == {"0"}  # SNS delivered it nowhere else

        theirs = await record_paid(dbs[1], "alice")
        await wait_for(lambda: ids(on_a) == [mine, theirs], timeout=15)
        unmarked = paid("alice")
        await b.fanout.publish(unmarked)  # SNS without an origin, as tools do
        await wait_for(lambda: ids(on_a) == [mine, theirs, unmarked.id], timeout=15)
        assert a.fanout.feed.received == 2


async def record_paid(db: Database, user_id: str) -> str:
    """An order.paid in ``db``'s outbox, as the order service records it; its id."""
    order = pb_order.Order(id=str(uuid.uuid4()), user_id=user_id, status="PAID")
    async with db.unit_of_work() as uow:
        event_id = await record_event(uow, "order.paid", pb.OrderPaid(order=order), source="test")
        await uow.commit()
    return event_id
