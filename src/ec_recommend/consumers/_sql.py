"""Portable upserts for the subscribers' stores (SQLite and PostgreSQL).

Each statement is built once per dialect, table and column set, then run
with its values as parameters (see ``platform.storage.statements``).

Counters (``add_to``) are hot rows: every batch of a consumer adds to the
same day's and product's. Added in the order events arrive, two concurrent
batches on PostgreSQL lock them in opposite orders and deadlock. So a unit
of work gathers its additions, one per row, and writes them when it
commits, in key order: each row is locked once, last, and always in the
same order.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa

from ec_recommend.platform.storage import UnitOfWork, dialect_insert
from ec_recommend.platform.storage.work import insert_unless_there


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
    statement = insert_unless_there(uow.dialect, table, key.name)
    return (await uow.execute(statement, values)).first() is not None


def add_to(
    uow: UnitOfWork,
    table: sa.Table,
    keys: dict[str, Any],
    increments: dict[str, int],
) -> None:
    """Create the row of ``keys`` or add ``increments`` to its counters, when
    ``uow`` commits (it reads the same as before until then)."""
    uow.at_commit(Counters).add(table, keys, increments)


# A statement's shape: (table name, key column names, counter names).
_Shape = tuple[str, tuple[str, ...], tuple[str, ...]]


class Counters:
    """A unit of work's counter additions, merged per row, written at commit."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._tables: dict[str, sa.Table] = {}
        self._totals: dict[_Shape, dict[tuple[Any, ...], list[int]]] = {}

    def add(self, table: sa.Table, keys: dict[str, Any], increments: dict[str, int]) -> None:
        self._tables[table.name] = table
        shape = (table.name, tuple(keys), tuple(increments))
        rows = self._totals.setdefault(shape, {})
        key = tuple(keys.values())
        totals = rows.get(key)
        if totals is None:
            rows[key] = list(increments.values())
        else:
            for i, amount in enumerate(increments.values()):
                totals[i] += amount

    async def flush(self) -> None:
        """One statement per shape, in the same order every time: shapes
        sorted, and each shape's rows sorted by key."""
        for shape in sorted(self._totals):
            name, key_names, counter_names = shape
            rows = self._totals[shape]
            statement = _add_to(self._uow.dialect, self._tables[name], key_names, counter_names)
            await self._uow.execute(
                statement,
                [
                    {
                        **dict(zip(key_names, key, strict=True)),
                        **dict(zip(counter_names, rows[key], strict=True)),
                    }
                    for key in sorted(rows)
                ],
            )
        self._totals.clear()
