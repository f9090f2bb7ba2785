"""Outbox and relay: events commit with state, survive SNS outages, arrive once in effect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend.config import EventsConfig, StorageConfig
from ec_recommend.platform.events.outbox import outbox, outbox_migration, record_event
from ec_recommend.platform.events.provision import ProvisionReport
from ec_recommend.platform.events.published_here import Published, PublishedHere
from ec_recommend.platform.events.relay import OutboxRelay
from ec_recommend.platform.events.runner import running_consumers
from ec_recommend.platform.events.topology import Topology
from ec_recommend.platform.storage import Database, Migration, open_database
from ec_recommend.platform.storage.database import create_tables
from ec_recommend.runtime.local_aws import LocalAws, free_port
from tests.conftest import wait_for
from tests.integration.events.conftest import count_effect, depth_is, effect_counts, subscription

pytestmark = pytest.mark.asyncio

state_metadata = sa.MetaData()
things = sa.Table("things", state_metadata, sa.Column("id", sa.String(36), primary_key=True))
MIGRATIONS = [Migration(1, create_tables(state_metadata)), outbox_migration(2)]


async def rows(db: Database, table: sa.Table) -> int:
    async with db.reading() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def change_and_emit(db: Database, thing_id: str, *, commit: bool) -> None:
    async with db.unit_of_work() as uow:
        await uow.execute(sa.insert(things).values(id=thing_id))
        await record_event(
            uow, "product.updated", pb.ProductUpdated(product_id=thing_id), source="test"
        )
        if commit:
            await uow.commit()


async def test_event_commits_with_the_state_change_and_rolls_back_with_it(
    storage: StorageConfig,
) -> None:
    async with open_database(storage, "svc", MIGRATIONS) as db:
        await change_and_emit(db, "kept", commit=True)
        await change_and_emit(db, "dropped", commit=False)
        with pytest.raises(RuntimeError):
            async with db.unit_of_work() as uow:
                await uow.execute(sa.insert(things).values(id="failed"))
                await record_event(
                    uow, "product.updated", pb.ProductUpdated(product_id="failed"), source="t"
                )
                raise RuntimeError("business rule failed after the event was recorded")
        assert await rows(db, things) == 1
        assert await rows(db, outbox) == 1


async def test_record_event_rejects_a_payload_of_the_wrong_type(storage: StorageConfig) -> None:
    async with open_database(storage, "svc", MIGRATIONS) as db, db.unit_of_work() as uow:
        with pytest.raises(TypeError):
            await record_event(uow, "order.paid", pb.ProductUpdated(), source="test")


@asynccontextmanager
async def tcp_forwarder(port: int, target: str) -> AsyncIterator[None]:
    """Listen on ``port`` and forward every connection to ``target`` (host:port URL)."""
    parsed = urlparse(target)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    tasks: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(parsed.hostname, parsed.port)
        for task in (
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(on_connect, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def test_sns_outage_loses_nothing_and_duplicates_take_effect_once(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    topology: Topology,
    sqlite_storage: StorageConfig,
    local_aws: LocalAws,
    sqs: Any,
) -> None:
    port = free_port()  # nothing listens here until the "outage" ends
    relay_config = replace(events_config, endpoint_url=f"http://127.0.0.1:{port}")
    queue = "search-index-queue"
    # What a gateway in this process hears: only what SNS accepted, again when
    # it goes out again.
    heard: list[tuple[str, str]] = []
    published_here = PublishedHere()

    def hear(events: Published) -> None:
        heard.extend(events)

    async with open_database(sqlite_storage, "svc", MIGRATIONS) as db:
        async with OutboxRelay(db, relay_config, topology, published_here) as relay:
            with published_here.listening(hear):
                for i in range(100):
                    await change_and_emit(db, f"thing-{i}", commit=True)
                await wait_for(lambda: relay.failures >= 3, timeout=30)
                assert relay.published == 0
                assert await relay.pending() == 100
                assert await depth_is(sqs, events_config, queue, 0)
                assert heard == []

                async with tcp_forwarder(port, local_aws.endpoint_url):
                    await wait_for(lambda: relay.pending_is(0), timeout=60)
                    assert relay.published == 100
                    assert len({body for _, body in heard}) == len(heard) == 100
                    assert {kind for kind, _ in heard} == {"product.updated"}
                    # A crash between publishing and marking sent: 30 go out again.
                    async with db.unit_of_work() as uow:
                        await uow.execute(
                            sa.update(outbox).where(outbox.c.seq <= 30).values(sent_at=None)
                        )
                        await uow.commit()
                    await wait_for(lambda: relay.published == 130, timeout=30)
                    assert len(heard) == 130 and len({body for _, body in heard}) == 100

        sub = subscription(queue, {"product.updated": count_effect})
        async with running_consumers(sqlite_storage, events_config, [sub]) as (worker,):
            await wait_for(lambda: worker.stats.handled == 100, timeout=60)
            await wait_for(lambda: worker.stats.duplicates == 30, timeout=30)
            counts = await effect_counts(worker)
            assert len(counts) == 100 and set(counts.values()) == {1}
            await wait_for(lambda: depth_is(sqs, events_config, queue, 0), timeout=10)
