"""Portable upserts for the subscribers' stores (SQLite and PostgreSQL).

Each statement is built once per dialect, table and column set, then run
with its values as parameters (see ``platform.storage.statements``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa

from ec_recommend.platform.storage import UnitOfWork, dialect_insert


@cache
def _insert_once(dialect: str, table: sa.Table, key: str) -> Any:
    return dialect_insert(dialect, table).on_conflict_do_nothing().returning(table.c[key])


@cache
def _add_to(
    dialect: str, table: sa.Table, keys: tuple[str, ...], increments: tuple[str, ...]
) -> Any:
    insert = dialect_insert(dialect, table)
    return insert.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + insert.excluded[name] for name in increments},
    )


async def insert_once(uow: UnitOfWork, table: sa.Table, key: sa.Column[Any], **values: Any) -> bool:
    """Insert a row unless its key exists; True when this call inserted it."""
    statement = _insert_once(uow.dialect, table, key.name)
    return (await uow.execute(statement, values)).first() is not None


async def add_to(
    uow: UnitOfWork,
    table: sa.Table,
    keys: dict[str, Any],
    increments: dict[str, int],
) -> None:
    """Create the row of ``keys`` or add ``increments`` to its counters."""
    statement = _add_to(uow.dialect, table, tuple(keys), tuple(increments))
    await uow.execute(statement, {**keys, **increments})
