#!/usr/bin/env python
"""Units of work and bounded reads on PostgreSQL, through SQLAlchemy and prepared.

One service database on the local PostgreSQL (a fresh schema, dropped after)
with a table shaped like the order service's hot rows. Two ways, taking
turns for ``--rounds`` rounds:

  sqlalchemy  ``AsyncConnection.execute`` in a unit of work, and
              ``Database.read`` of ``conn.execute(...).first()``: every run
              before statements were prepared on PostgreSQL (and a run inside
              a recording span now)
  prepared    ``UnitOfWork.execute`` and ``Database.first`` outside a
              recording span: compiled once, run on the asyncpg adapter's
              cursor

A unit of work is what a checkout step commits: an INSERT, a conditional
UPDATE (a compare-and-set) and a SELECT by key, then COMMIT. A read is one
SELECT by key on a pooled connection outside a transaction.

Prints microseconds of this process's CPU per unit of work and per read for
each way (the median of the rounds) and prepared/sqlalchemy. PostgreSQL's
own CPU is the same both ways (the same statements reach it).

Usage: .venv/bin/python scripts/bench/postgres_statements.py [--units 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import sqlalchemy as sa
from checkout import POSTGRES_URL, drop_schemas  # the bench next to this one

from ec_recommend.config import StorageConfig
from ec_recommend.platform.storage import Database, Migration, open_database
from ec_recommend.platform.storage.database import create_tables

META = sa.MetaData()
orders = sa.Table(
    "orders",
    META,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(36), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("total", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
ADD = sa.insert(orders)
PAY = (
    sa.update(orders)
    .where(orders.c.id == sa.bindparam("b_id"), orders.c.status == sa.bindparam("b_from"))
    .values(status=sa.bindparam("b_to"), updated_at=sa.bindparam("b_at"))
)
BY_ID = sa.select(orders).where(orders.c.id == sa.bindparam("id"))
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _order(order_id: str) -> dict[str, Any]:
    return {
        "id": order_id,
        "user_id": "u-1",
        "status": "PENDING_PAYMENT",
        "total": 1200,
        "created_at": NOW,
        "updated_at": NOW,
    }


def _pay(order_id: str) -> dict[str, Any]:
    return {"b_id": order_id, "b_from": "PENDING_PAYMENT", "b_to": "PAID", "b_at": NOW}


async def _unit(db: Database, prepared: bool) -> None:
    order_id = uuid.uuid4().hex
    async with db.unit_of_work() as uow:
        if prepared:
            await uow.execute(ADD, _order(order_id))
            await uow.execute(PAY, _pay(order_id))
            (await uow.execute(BY_ID, {"id": order_id})).one()
        else:
            conn = uow.connection
            await conn.execute(ADD, _order(order_id))
            await conn.execute(PAY, _pay(order_id))
            (await conn.execute(BY_ID, {"id": order_id})).one()
        await uow.commit()


async def _read(db: Database, prepared: bool) -> None:
    if prepared:
        await db.first(BY_ID, {"id": "o-1"})
    else:
        await db.read(lambda conn: conn.execute(BY_ID, {"id": "o-1"}).first())


async def _cpu_per_run(run: Callable[[], Awaitable[None]], runs: int) -> float:
    start = time.process_time()
    for _ in range(runs):
        await run()
    return (time.process_time() - start) / runs * 1e6


async def main(units: int, rounds: int) -> None:
    prefix = f"bench{uuid.uuid4().hex[:8]}_"
    with TemporaryDirectory() as tmp:
        storage = StorageConfig(
            data_dir=Path(tmp), database_url=POSTGRES_URL, schema_prefix=prefix, pool_size=2
        )
        try:
            async with open_database(storage, "orders", [Migration(1, create_tables(META))]) as db:
                await _unit(db, prepared=True)  # seen once: prepared from now on
                await _read(db, prepared=True)
                results: dict[str, list[float]] = {}
                for _ in range(rounds):
                    for way, prepared in (("sqlalchemy", False), ("prepared", True)):
                        unit = await _cpu_per_run(lambda p=prepared: _unit(db, p), units)
                        read = await _cpu_per_run(lambda p=prepared: _read(db, p), units)
                        results.setdefault(f"{way} unit", []).append(unit)
                        results.setdefault(f"{way} read", []).append(read)
        finally:
            await drop_schemas(prefix)
    median = {name: statistics.median(values) for name, values in results.items()}
    print(f"PostgreSQL, {units} runs a round, median of {rounds} rounds (µs of CPU, this process)")
    for kind in ("unit", "read"):
        before, after = median[f"sqlalchemy {kind}"], median[f"prepared {kind}"]
        label = "unit of work (INSERT, UPDATE, SELECT, COMMIT)" if kind == "unit" else "read by key"
        ratio = after / before
        print(f"  {label:48s} sqlalchemy {before:7.1f}  prepared {after:7.1f}  x{ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.units, args.rounds))
