"""Fixtures for the event platform: an EventsConfig on moto with a unique prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend.config import EventsConfig, StorageConfig
from ec_recommend.platform.events.aws import aws_client, queue_url
from ec_recommend.platform.events.consumer import Handler, Subscription
from ec_recommend.platform.events.envelope import Event, new_event
from ec_recommend.platform.events.provision import ProvisionReport, provision
from ec_recommend.platform.events.topology import Topology, load_topology
from ec_recommend.platform.events.worker import ConsumerWorker
from ec_recommend.platform.storage import Migration, UnitOfWork, open_database
from ec_recommend.platform.storage.database import create_tables
from ec_recommend.runtime.local_aws import LocalAws
from tests.conftest import events_on


@pytest.fixture
def events_config(local_aws: LocalAws) -> EventsConfig:
    return events_on(
        local_aws,
        relay_interval=0.05,
        relay_max_backoff=0.5,
        consumer_wait_seconds=1,
        shutdown_grace=5.0,
    )


@pytest.fixture
def topology() -> Topology:
    """The real topology with short timings, so redelivery happens within a test."""
    return load_topology().with_queue_settings(visibility_timeout=2, max_receive_count=3)


@pytest_asyncio.fixture
async def provisioned(events_config: EventsConfig, topology: Topology) -> ProvisionReport:
    return await provision(events_config, topology)


@pytest_asyncio.fixture
async def sqs(events_config: EventsConfig) -> AsyncIterator[Any]:
    async with aws_client("sqs", events_config) as client:
        yield client


@pytest.fixture
def sqlite_storage(tmp_path: Path) -> StorageConfig:
    return StorageConfig(data_dir=tmp_path / "data")


# A consumer's own table: how often each event's effect happened.
effects_metadata = sa.MetaData()
effects = sa.Table(
    "effects",
    effects_metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("times", sa.Integer, nullable=False),
)
EFFECTS_MIGRATIONS = [Migration(1, create_tables(effects_metadata))]


async def count_effect(event: Event, uow: UnitOfWork) -> None:
    """A handler whose effect is visible: bump the event's counter."""
    row = (
        await uow.execute(sa.select(effects.c.times).where(effects.c.event_id == event.id))
    ).first()
    if row is None:
        await uow.execute(sa.insert(effects).values(event_id=event.id, times=1))
    else:
        await uow.execute(
            sa.update(effects).where(effects.c.event_id == event.id).values(times=row.times + 1)
        )


async def effect_counts(worker: ConsumerWorker) -> dict[str, int]:
    """Effects so far, read through a running worker's database."""
    async with worker.db.reading() as conn:
        rows = (await conn.execute(sa.select(effects.c.event_id, effects.c.times))).all()
    return {row.event_id: row.times for row in rows}


async def stored_effects(storage: StorageConfig, name: str = "probe") -> dict[str, int]:
    """Effects in a consumer's database after its workers have stopped."""
    async with open_database(storage, name, EFFECTS_MIGRATIONS) as db, db.reading() as conn:
        rows = (await conn.execute(sa.select(effects.c.event_id, effects.c.times))).all()
    return {row.event_id: row.times for row in rows}


def subscription(queue: str, handlers: Mapping[str, Handler], name: str = "probe") -> Subscription:
    return Subscription(
        name=name, queue=queue, database=name, migrations=EFFECTS_MIGRATIONS, handlers=handlers
    )


def product_event(product_id: str = "p-1") -> Event:
    return new_event(
        "product.updated",
        pb.ProductUpdated(product_id=product_id, name="Tea", changed_fields=["name"]),
        source="test",
    )


async def queue_depth(sqs: Any, config: EventsConfig, name: str) -> int:
    url = await queue_url(sqs, config, name)
    attrs = await sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    return sum(int(v) for v in attrs["Attributes"].values())


async def depth_is(sqs: Any, config: EventsConfig, name: str, expected: int) -> bool:
    return await queue_depth(sqs, config, name) == expected
