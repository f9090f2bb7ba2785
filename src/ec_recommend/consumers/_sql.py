"""Portable upserts for the subscribers' stores (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ec_recommend.platform.storage import UnitOfWork


def dialect_insert(uow: UnitOfWork, table: sa.Table) -> Any:
    """An INSERT that supports ``on_conflict_do_*`` on the unit of work's engine."""
    if uow.connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def insert_once(uow: UnitOfWork, table: sa.Table, key: sa.Column[Any], **values: Any) -> bool:
    """Insert a row unless its key exists; True when this call inserted it."""
    statement = dialect_insert(uow, table).values(**values).on_conflict_do_nothing().returning(key)
    return (await uow.execute(statement)).first() is not None


async def add_to(
    uow: UnitOfWork,
    table: sa.Table,
    keys: dict[str, Any],
    increments: dict[str, int],
) -> None:
    """Create the row of ``keys`` or add ``increments`` to its counters."""
    insert = dialect_insert(uow, table).values(**keys, **increments)
    statement = insert.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + insert.excluded[name] for name in increments},
    )
    await uow.execute(statement)
