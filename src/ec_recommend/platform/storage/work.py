"""Writing inside the caller's unit of work, or in one of our own; rows
inserted unless their key is there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import sqlalchemy as sa

from ec_recommend.platform.storage.database import Database, UnitOfWork
from ec_recommend.platform.storage.statements import dialect_insert


@asynccontextmanager
async def writing(db: Database, uow: UnitOfWork | None) -> AsyncIterator[UnitOfWork]:
    """The caller's unit of work (it commits), or a new one committed here.

    An event consumer passes its own (holding the inbox row) so the
    projection write and the dedup mark commit together.
    """
    if uow is not None:
        yield uow
        return
    async with db.unit_of_work() as own:
        yield own
        await own.commit()


@cache
def insert_unless_there(dialect: str, table: sa.Table, key: str) -> Any:
    """``INSERT .. ON CONFLICT DO NOTHING RETURNING key`` for ``dialect``, built once."""
    return dialect_insert(dialect, table).on_conflict_do_nothing().returning(table.c[key])


async def insert_new(
    uow: UnitOfWork, table: sa.Table, key: sa.Column[Any], rows: list[dict[str, Any]]
) -> set[Any]:
    """Insert the rows whose key is not there yet, in one statement; the keys
    this call inserted. Give the rows in key order (one lock order)."""
    if not rows:
        return set()
    statement = insert_unless_there(uow.dialect, table, key.name)
    return {row[0] for row in await uow.execute(statement, rows)}
