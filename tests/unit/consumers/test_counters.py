"""Counter additions: merged per row within a unit of work, written at commit in key order."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from ec_recommend.consumers._sql import add_to
from ec_recommend.platform.storage import UnitOfWork

metadata = sa.MetaData()
daily = sa.Table(
    "daily",
    metadata,
    sa.Column("kind", sa.String, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("count", sa.Integer),
)
stats = sa.Table(
    "stats",
    metadata,
    sa.Column("product", sa.String, primary_key=True),
    sa.Column("views", sa.Integer),
    sa.Column("sold", sa.Integer),
)


class _Recorded:
    dialect = sa.dialects.postgresql.dialect()

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def in_transaction(self) -> bool:
        return True

    async def execute(self, statement: Any, params: Any = None) -> None:
        self.calls.append((statement.table.name, params))

    async def commit(self) -> None:
        self.calls.append(("COMMIT", None))


def _unit_of_work() -> tuple[UnitOfWork, _Recorded]:
    connection = _Recorded()
    return UnitOfWork(connection), connection  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_additions_wait_for_the_commit_and_merge_per_row() -> None:
    uow, connection = _unit_of_work()
    today = date(2026, 12, 1)
    add_to(uow, stats, {"product": "p2"}, {"views": 1, "sold": 0})
    add_to(uow, daily, {"kind": "order.paid", "day": today}, {"count": 1})
    add_to(uow, stats, {"product": "p1"}, {"views": 1, "sold": 0})
    add_to(uow, daily, {"kind": "order.created", "day": today}, {"count": 1})
    add_to(uow, daily, {"kind": "order.paid", "day": today}, {"count": 1})
    add_to(uow, stats, {"product": "p2"}, {"views": 0, "sold": 3})
    assert connection.calls == []
    await uow.commit()
    # One statement per table, rows in key order, then the commit: every
    # unit of work locks the same rows in the same order, last.
    assert connection.calls == [
        (
            "daily",
            [
                {"kind": "order.created", "day": today, "count": 1},
                {"kind": "order.paid", "day": today, "count": 2},
            ],
        ),
        (
            "stats",
            [
                {"product": "p1", "views": 1, "sold": 0},
                {"product": "p2", "views": 1, "sold": 3},
            ],
        ),
        ("COMMIT", None),
    ]
    assert uow.committed
