"""Outbox gauges: backlog and oldest age follow what the relay has not sent."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ec_recommend._gen.ecommerce import events as pb_events
from ec_recommend.config import StorageConfig
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.events.outbox import outbox, outbox_migration, record_event
from ec_recommend.platform.storage import open_database
from ec_recommend.platform.telemetry.metrics import Metrics
from ec_recommend.platform.telemetry.outbox import outbox_state, watching_outbox
from tests.conftest import wait_for

pytestmark = pytest.mark.asyncio


def backlog(metrics: Metrics) -> float | None:
    try:
        return float(metrics.outbox_backlog.get({"service": "user"}))
    except KeyError:  # not polled yet
        return None


async def test_backlog_and_oldest_age_follow_the_outbox(tmp_path: Path) -> None:
    storage = StorageConfig(data_dir=tmp_path)
    async with open_database(storage, "user", [outbox_migration(1)]) as db:
        assert await outbox_state(db) == (0, 0.0)
        async with db.unit_of_work() as uow:
            for n in range(3):
                await record_event(
                    uow, "user.created", pb_events.UserCreated(user_id=f"u{n}"), source="user"
                )
            await uow.commit()
        count, age = await outbox_state(db)
        assert count == 3 and 0 <= age < 60

        metrics = Metrics()
        async with watching_outbox(db, interval=0.05, metrics=metrics):
            await wait_for(lambda: backlog(metrics) == 3)
            async with db.unit_of_work() as uow:
                await uow.execute(sa.update(outbox).values(sent_at=utcnow()))
                await uow.commit()
            await wait_for(lambda: backlog(metrics) == 0)
        assert metrics.outbox_oldest_age.get({"service": "user"}) == 0
