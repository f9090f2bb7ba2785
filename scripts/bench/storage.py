#!/usr/bin/env python
"""SQLite write transactions: CPU per 5-statement unit of work, three ways.

One database file (WAL, synchronous=NORMAL), a table of counters; each
transaction runs five statements (INSERT, UPDATE, SELECT, INSERT, UPDATE)
and commits, one after another, ``--transactions`` times per way:

  aiosqlite   the old write path, kept for migrations: the async engine's
              pooled connection, BEGIN IMMEDIATE, every statement hopping to
              aiosqlite's thread and back (``Database._async_unit_of_work``)
  inline      ``Database.unit_of_work()``: the writer's synchronous
              connection on the loop's thread, the same asyncio lock
  sqlite3     the driver alone: no SQLAlchemy, no asyncio

Prints CPU (the whole process: the loop's thread and aiosqlite's) and wall
time per transaction for each, and each as a multiple of bare sqlite3. The
ways take turns over ``--rounds`` rounds; the median round is reported.

Usage: .venv/bin/python scripts/bench/storage.py [--transactions 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import sqlalchemy as sa

from ec_recommend.config import StorageConfig
from ec_recommend.platform.storage import Migration, UnitOfWork, open_database
from ec_recommend.platform.storage.database import create_tables

META = sa.MetaData()
counters = sa.Table(
    "counters",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)
MIGRATIONS = [Migration(1, create_tables(META))]


async def _five_statements(uow: UnitOfWork, n: int) -> None:
    base = n * 2
    await uow.execute(sa.insert(counters).values(id=base, value=n))
    await uow.execute(sa.update(counters).where(counters.c.id == base).values(value=n + 1))
    (await uow.execute(sa.select(counters.c.value).where(counters.c.id == base))).scalar_one()
    await uow.execute(sa.insert(counters).values(id=base + 1, value=n))
    await uow.execute(sa.update(counters).where(counters.c.id == base + 1).values(value=n + 2))
    await uow.commit()


async def _through(
    unit_of_work: Callable[[], AbstractAsyncContextManager[UnitOfWork]], first: int, count: int
) -> None:
    for n in range(first, first + count):
        async with unit_of_work() as uow:
            await _five_statements(uow, n)


def _bare(path: Path, first: int, count: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=NORMAL")
        for n in range(first, first + count):
            base = (n + 10_000_000) * 2  # keys of its own
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO counters (id, value) VALUES (?, ?)", (base, n))
            conn.execute("UPDATE counters SET value = ? WHERE id = ?", (n + 1, base))
            conn.execute("SELECT value FROM counters WHERE id = ?", (base,)).fetchone()
            conn.execute("INSERT INTO counters (id, value) VALUES (?, ?)", (base + 1, n))
            conn.execute("UPDATE counters SET value = ? WHERE id = ?", (n + 2, base + 1))
            conn.execute("COMMIT")
    finally:
        conn.close()


async def _measure(
    way: Callable[[int], Awaitable[None]], first: int, count: int
) -> tuple[float, float]:
    """(CPU µs, wall µs) per transaction of ``count`` from key ``first``."""
    cpu, wall = time.process_time(), time.perf_counter()
    await way(first)
    return (
        (time.process_time() - cpu) / count * 1e6,
        (time.perf_counter() - wall) / count * 1e6,
    )


async def _bare_async(path: Path, first: int, count: int) -> None:
    _bare(path, first, count)


async def main(transactions: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        async with open_database(StorageConfig(data_dir=data_dir), "bench", MIGRATIONS) as db:
            path = data_dir / "bench.db"
            ways: dict[str, Callable[[int], Awaitable[None]]] = {
                "aiosqlite": lambda first: _through(db._async_unit_of_work, first, transactions),
                "inline": lambda first: _through(db.unit_of_work, first, transactions),
                "sqlite3": lambda first: _bare_async(path, first, transactions),
            }
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
            first = 0
            for way in ways.values():  # warm-up: caches, first connections
                await way(first)
                first += transactions
            for _ in range(rounds):
                for name, way in ways.items():
                    results[name].append(await _measure(way, first, transactions))
                    first += transactions
    print(f"5-statement write transactions, {transactions} per way, median of {rounds} rounds")
    print(f"load average {os.getloadavg()[0]:.2f}")
    bare_cpu = statistics.median(cpu for cpu, _ in results["sqlite3"])
    for name, runs in results.items():
        cpu = statistics.median(c for c, _ in runs)
        wall = statistics.median(w for _, w in runs)
        print(
            f"  {name:<10} CPU {cpu:8.1f} µs/tx  wall {wall:8.1f} µs/tx"
            f"  CPU x{cpu / bare_cpu:5.1f} of sqlite3"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.transactions, args.rounds))
