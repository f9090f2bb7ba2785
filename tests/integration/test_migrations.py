"""Schema migrations: applied once, in order, on both engines."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from ec_recommend.platform.storage import Migration, open_database
from ec_recommend.platform.storage.database import add_columns, create_tables

pytestmark = pytest.mark.asyncio

OLD = sa.MetaData()
old_things = sa.Table("things", OLD, sa.Column("id", sa.Integer, primary_key=True))

NEW = sa.MetaData()
things = sa.Table(
    "things",
    NEW,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("label", sa.String(20), nullable=True),
    sa.Index("things_by_label", "label", unique=True),
)


async def test_a_later_version_adds_a_column_to_an_existing_database(storage) -> None:
    version_1 = [Migration(1, create_tables(OLD))]
    async with open_database(storage, "things", version_1) as db, db.unit_of_work() as uow:
        await uow.execute(sa.insert(old_things).values(id=1))
        await uow.commit()

    version_2 = [*version_1, Migration(2, add_columns(things, "label"))]
    async with open_database(storage, "things", version_2) as db:
        assert await db.migrate(version_2) == 2, "running again changes nothing"
        async with db.unit_of_work() as uow:
            await uow.execute(sa.insert(things).values(id=2, label="new"))
            await uow.commit()
        async with db.reading() as conn:
            rows = (await conn.execute(sa.select(things).order_by(things.c.id))).all()
        assert [(r.id, r.label) for r in rows] == [(1, None), (2, "new")]
        with pytest.raises(sa.exc.IntegrityError):  # the new unique index exists
            async with db.unit_of_work() as uow:
                await uow.execute(sa.insert(things).values(id=3, label="new"))


async def test_a_fresh_database_with_the_current_shape_skips_the_alter(storage) -> None:
    migrations = [Migration(1, create_tables(NEW)), Migration(2, add_columns(things, "label"))]
    async with open_database(storage, "things", migrations) as db, db.unit_of_work() as uow:
        await uow.execute(sa.insert(things).values(id=1, label="x"))
        await uow.commit()


async def test_replicas_starting_together_migrate_once(storage) -> None:
    """Two product replicas on one PostgreSQL schema start at the same moment."""
    migrations = [Migration(1, create_tables(NEW)), Migration(2, add_columns(things, "label"))]

    async def replica() -> int:
        async with open_database(storage, "things", migrations) as db:
            return await db.migrate(migrations)

    assert await asyncio.gather(*(replica() for _ in range(4))) == [2] * 4
