"""Replaying the outbox: sent events go out again, and every inbox makes that harmless."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ec_recommend.config import EventsConfig, StorageConfig
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.events.outbox import outbox, outbox_migration
from ec_recommend.platform.events.provision import ProvisionReport
from ec_recommend.platform.events.relay import OutboxRelay
from ec_recommend.platform.events.replay import mark_unsent
from ec_recommend.platform.events.runner import running_consumers
from ec_recommend.platform.events.topology import Topology
from ec_recommend.platform.storage import open_database
from tests.conftest import wait_for
from tests.integration.events.conftest import count_effect, effect_counts, subscription
from tests.integration.events.test_outbox_relay import MIGRATIONS, change_and_emit


@pytest.mark.asyncio
async def test_replaying_twice_republishes_and_every_effect_stays_single(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    topology: Topology,
    storage: StorageConfig,
) -> None:
    queue = "search-index-queue"
    sub = subscription(queue, {"product.updated": count_effect})
    async with (
        open_database(storage, "svc", MIGRATIONS) as db,
        OutboxRelay(db, events_config, topology) as relay,
        running_consumers(storage, events_config, [sub]) as (worker,),
    ):
        since = utcnow()
        for i in range(20):
            await change_and_emit(db, f"thing-{i}", commit=True)
        await wait_for(lambda: worker.stats.handled == 20, timeout=60)

        async def all_marked_sent() -> bool:
            # A consumer may handle an event before the relay's pass that sent
            # it has recorded the sending: only rows marked sent are replayed.
            return await relay.pending() == 0

        await wait_for(all_marked_sent, timeout=60)
        assert await mark_unsent(db, since) == 20
        relay.wake()
        await wait_for(lambda: worker.stats.duplicates == 20, timeout=60)
        await wait_for(all_marked_sent, timeout=60)
        assert await mark_unsent(db, since) == 20
        await wait_for(lambda: worker.stats.duplicates == 40, timeout=60)

        counts = await effect_counts(worker)
        assert len(counts) == 20 and set(counts.values()) == {1}
        assert worker.stats.handled == 20
        # Rows sent before the window are left alone.
        assert await mark_unsent(db, utcnow() + timedelta(seconds=1)) == 0


async def _outbox_with_sent_rows(storage: StorageConfig) -> None:
    """An order database with three rows sent just now and two sent two hours ago."""

    async with open_database(storage, "order", MIGRATIONS) as db:
        for i in range(5):
            await change_and_emit(db, f"order-{i}", commit=True)
        async with db.unit_of_work() as uow:
            await uow.execute(sa.update(outbox).values(sent_at=utcnow()))
            await uow.execute(
                sa.update(outbox)
                .where(outbox.c.seq <= 2)
                .values(sent_at=utcnow() - timedelta(hours=2))
            )
            await uow.commit()


async def _pending(storage: StorageConfig) -> int:
    async with open_database(storage, "order", [outbox_migration(2)]) as db, db.reading() as conn:
        query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return int((await conn.execute(query)).scalar_one())


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EC_")}
    return subprocess.run(
        [sys.executable, "-m", "ec_recommend.cli", "events", *args, "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_events_replay_marks_the_window_unsent_and_is_harmless_twice(tmp_path: Path) -> None:
    storage = StorageConfig(data_dir=tmp_path / "data")
    asyncio.run(_outbox_with_sent_rows(storage))

    for expected in (3, 0):  # the second run finds them pending already
        done = _cli(storage.data_dir, "replay", "--service", "order", "--since", "1h")
        assert done.returncode == 0, done.stderr
        assert f"order: {expected} event(s) sent since" in done.stdout
    assert asyncio.run(_pending(storage)) == 3

    everything = _cli(storage.data_dir, "replay", "--since", "1d")
    assert everything.returncode == 0, everything.stderr
    assert "order: 2 event(s)" in everything.stdout
    assert "user: no database" in everything.stdout
    assert asyncio.run(_pending(storage)) == 5


def test_events_replay_refuses_a_bad_since_without_a_traceback(tmp_path: Path) -> None:
    done = _cli(tmp_path, "replay", "--since", "last tuesday")
    assert done.returncode == 2
    assert "ISO 8601" in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())  # nothing written
