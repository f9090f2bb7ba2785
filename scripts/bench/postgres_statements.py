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
              recording span: compiled once, run on asyncpg directly (a
              read on a connection leased for it alone)

A unit of work is what a checkout step commits: an INSERT, a conditional
UPDATE (a compare-and-set) and a SELECT by key, then COMMIT. A read is one
SELECT by key on a pooled connection outside a transaction.

Then a write of one statement (an UPDATE by key), two ways:

  unit of work  BEGIN, the UPDATE prepared, COMMIT (before ``Database.write``)
  write         ``Database.write``: the UPDATE alone, in autocommit

Then what a connection costs around a statement, two ways each:

  read's connection   ``AsyncEngine.connect()`` in autocommit around the
                      prepared read (before leases) / ``Database.first``
                      on a connection leased for the read alone
  commit and checkin  of a unit of work of one UPDATE: ``AsyncConnection``'s
                      ``commit()`` and ``close()`` / ``UnitOfWork.commit``
                      and the unit's own checkin (only those two timed)

Prints microseconds of this process's CPU per unit of work, per read and
per write for each way (the median of the rounds) and the ratio. PostgreSQL's
own CPU is the same both ways for the first two (the same statements reach
it); for the write, where the ways send different statements, the local
server's CPU per write is printed too.

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
from checkout import (  # the bench next to this one
    POSTGRES_URL,
    drop_schemas,
    postgres_cpu_seconds,
    postmaster_pid,
)

from ec_recommend.config import StorageConfig
from ec_recommend.platform.storage import Database, Migration, open_database
from ec_recommend.platform.storage.database import UnitOfWork, _execute_async, create_tables

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
TOUCH = (
    sa.update(orders)
    .where(orders.c.id == sa.bindparam("b_id"))
    .values(updated_at=sa.bindparam("b_at"))
)
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


async def _write(db: Database, alone: bool) -> None:
    params = {"b_id": "o-1", "b_at": NOW}
    if alone:
        await db.write(TOUCH, params)
        return
    async with db.unit_of_work() as uow:
        await uow.execute(TOUCH, params)
        await uow.commit()


async def _read_on_async_connection(db: Database) -> None:
    """A prepared read on a connection of ``AsyncEngine.connect()`` (before leases)."""
    async with db._connect(db._autocommit) as conn:
        (await _execute_async(conn, db._prepared, BY_ID, {"id": "o-1"})).first()


async def _commit_and_checkin(db: Database, adapter_way: bool) -> float:
    """Seconds of CPU of one unit of work's commit and checkin (its UPDATE untimed)."""
    if adapter_way:
        async with db.unit_of_work() as uow:
            await uow.execute(TOUCH, {"b_id": "o-1", "b_at": NOW})
            start = time.process_time()
            await uow.commit()
        return time.process_time() - start
    conn = db.engine.connect()
    await conn.start()
    await conn.begin()
    await UnitOfWork(conn, db._prepared).execute(TOUCH, {"b_id": "o-1", "b_at": NOW})
    start = time.process_time()
    await conn.commit()
    await conn.close()
    return time.process_time() - start


async def _commit_cpu_per_run(db: Database, adapter_way: bool, runs: int) -> float:
    spent = 0.0
    for _ in range(runs):
        spent += await _commit_and_checkin(db, adapter_way)
    return spent / runs * 1e6


async def _cpu_per_run(run: Callable[[], Awaitable[None]], runs: int) -> float:
    start = time.process_time()
    for _ in range(runs):
        await run()
    return (time.process_time() - start) / runs * 1e6


async def _server_cpu_per_run(
    run: Callable[[], Awaitable[None]], runs: int, postmaster: int | None
) -> tuple[float, float]:
    """This process's and the local server's µs of CPU per run (0 with no server)."""
    server = postgres_cpu_seconds(postmaster) if postmaster else 0.0
    ours = await _cpu_per_run(run, runs)
    spent = postgres_cpu_seconds(postmaster) - server if postmaster else 0.0
    return ours, spent / runs * 1e6


async def main(units: int, rounds: int) -> None:
    prefix = f"bench{uuid.uuid4().hex[:8]}_"
    with TemporaryDirectory() as tmp:
        storage = StorageConfig(
            data_dir=Path(tmp), database_url=POSTGRES_URL, schema_prefix=prefix, pool_size=2
        )
        try:
            async with open_database(storage, "orders", [Migration(1, create_tables(META))]) as db:
                async with db.unit_of_work() as uow:
                    await uow.execute(ADD, _order("o-1"))
                    await uow.commit()
                await _unit(db, prepared=True)  # seen once: prepared from now on
                await _read(db, prepared=True)
                await _write(db, alone=True)
                await _write(db, alone=False)
                postmaster = postmaster_pid()
                results: dict[str, list[float]] = {}
                for _ in range(rounds):
                    for way, prepared in (("sqlalchemy", False), ("prepared", True)):
                        unit = await _cpu_per_run(lambda p=prepared: _unit(db, p), units)
                        read = await _cpu_per_run(lambda p=prepared: _read(db, p), units)
                        results.setdefault(f"{way} unit", []).append(unit)
                        results.setdefault(f"{way} read", []).append(read)
                    for way, run in (
                        ("async connection read", lambda: _read_on_async_connection(db)),
                        ("leased read", lambda: _read(db, prepared=True)),
                    ):
                        results.setdefault(way, []).append(await _cpu_per_run(run, units))
                    for way, adapter_way in (
                        ("async connection commit", False),
                        ("adapter commit", True),
                    ):
                        results.setdefault(way, []).append(
                            await _commit_cpu_per_run(db, adapter_way, units)
                        )
                    for way, alone in (("uow", False), ("alone", True)):
                        ours, server = await _server_cpu_per_run(
                            lambda a=alone: _write(db, a), units, postmaster
                        )
                        results.setdefault(f"{way} write", []).append(ours)
                        results.setdefault(f"{way} write server", []).append(server)
        finally:
            await drop_schemas(prefix)
    median = {name: statistics.median(values) for name, values in results.items()}
    print(f"PostgreSQL, {units} runs a round, median of {rounds} rounds (µs of CPU, this process)")
    for kind in ("unit", "read"):
        before, after = median[f"sqlalchemy {kind}"], median[f"prepared {kind}"]
        label = "unit of work (INSERT, UPDATE, SELECT, COMMIT)" if kind == "unit" else "read by key"
        ratio = after / before
        print(f"  {label:48s} sqlalchemy {before:7.1f}  prepared {after:7.1f}  x{ratio:.2f}")
    for label, before_way, after_way, names in (
        ("a read's connection", "async connection read", "leased read", ("connect()", "leased")),
        (
            "a unit of work's commit and checkin",
            "async connection commit",
            "adapter commit",
            ("AsyncConnection", "adapter"),
        ),
    ):
        before, after = median[before_way], median[after_way]
        ratio = after / before
        print(f"  {label:48s} {names[0]} {before:7.1f}  {names[1]} {after:7.1f}  x{ratio:.2f}")
    for suffix, whose in (("", "this process"), (" server", "PostgreSQL server")):
        before, after = median[f"uow write{suffix}"], median[f"alone write{suffix}"]
        label = f"one-statement write, {whose}"
        print(
            f"  {label:48s} unit of work {before:7.1f}  write {after:7.1f}  x{after / before:.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.units, args.rounds))
