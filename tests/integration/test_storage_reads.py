"""``Database.read``: short reads see every committed write and nothing uncommitted."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from ec_recommend.platform.storage import Migration, open_database
from ec_recommend.platform.storage.database import create_tables

pytestmark = pytest.mark.asyncio

META = sa.MetaData()
counters = sa.Table(
    "counters",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)
MIGRATIONS = [Migration(1, create_tables(META))]
BY_ID = sa.select(counters.c.value).where(counters.c.id == sa.bindparam("id"))


def value_of(counter_id: int) -> Callable[[sa.Connection], int | None]:
    def read(conn: sa.Connection) -> int | None:
        return conn.execute(BY_ID, {"id": counter_id}).scalar()

    return read


async def test_each_read_sees_the_writes_committed_before_it(storage) -> None:
    async with open_database(storage, "counters", MIGRATIONS) as db:
        assert await db.read(value_of(1)) is None
        for value in (10, 11):
            async with db.unit_of_work() as uow:
                statement = sa.insert(counters) if value == 10 else sa.update(counters)
                await uow.execute(statement.values(id=1, value=value))
                await uow.commit()
            # no snapshot is held over from the previous read
            assert await db.read(value_of(1)) == value


async def test_a_read_during_an_open_write_sees_the_last_committed_state(storage) -> None:
    async with open_database(storage, "counters", MIGRATIONS) as db:
        async with db.unit_of_work() as uow:
            await uow.execute(sa.insert(counters).values(id=1, value=1))
            await uow.commit()
        async with db.unit_of_work() as uow:
            await uow.execute(sa.update(counters).values(value=2))
            assert await db.read(value_of(1)) == 1, "uncommitted change invisible, no wait"
        assert await db.read(value_of(1)) == 1, "rolled back"


async def test_a_failing_read_leaves_the_next_one_working(storage) -> None:
    async with open_database(storage, "counters", MIGRATIONS) as db:

        def broken(conn: sa.Connection) -> None:
            conn.execute(sa.text("SELECT no_such_column FROM counters"))

        with pytest.raises(sa.exc.DBAPIError):
            await db.read(broken)
        assert await db.read(value_of(1)) is None
