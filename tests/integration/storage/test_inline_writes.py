"""SQLite units of work on the loop's thread: one queue per file, no loop stalls.

The writer runs its statements synchronously, so nothing may leave it
waiting in SQLite's busy handler for a lock only a coroutine (or another
process) can free: two ``Database`` objects on one file share one queue,
and a lock held by another process is waited for asynchronously, then
answered ``Unavailable``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from ec_recommend.config import StorageConfig
from ec_recommend.platform import errors
from ec_recommend.platform.storage import Database, Migration, open_database
from ec_recommend.platform.storage.database import create_tables
from ec_recommend.platform.storage.inline_reads import CACHE_KIB

pytestmark = pytest.mark.asyncio

META = sa.MetaData()
counters = sa.Table(
    "counters",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)
MIGRATIONS = [Migration(1, create_tables(META))]


def _sqlite(tmp_path: Path, pool_timeout: float = 5.0) -> StorageConfig:
    return StorageConfig(data_dir=tmp_path, pool_timeout=pool_timeout)


async def _value(db: Database, counter_id: int = 1) -> int | None:
    query = sa.select(counters.c.value).where(counters.c.id == counter_id)
    return await db.read(lambda conn: conn.execute(query).scalar())


async def test_statements_run_on_the_loop_thread(tmp_path: Path) -> None:
    threads: set[int] = set()
    async with open_database(_sqlite(tmp_path), "counters", MIGRATIONS) as db:
        assert db._inline_writer is not None
        sa.event.listen(
            db._inline_writer.engine,
            "before_cursor_execute",
            lambda *_: threads.add(threading.get_ident()),
        )
        async with db.unit_of_work() as uow:
            await uow.execute(sa.insert(counters).values(id=1, value=1))
            await uow.commit()
        assert await _value(db) == 1
    assert threads == {threading.get_ident()}


async def test_two_databases_on_one_file_queue_on_one_lock(tmp_path: Path) -> None:
    """A transaction held across an await (a consumer calling a service) makes
    the other Database's writer wait its turn, not fail or freeze the loop."""
    config = _sqlite(tmp_path)
    async with (
        open_database(config, "counters", MIGRATIONS) as first,
        open_database(config, "counters", []) as second,
    ):
        holding = asyncio.Event()
        release = asyncio.Event()
        ticks = 0

        async def hold_across_an_await() -> None:
            async with first.unit_of_work() as uow:
                await uow.execute(sa.insert(counters).values(id=1, value=1))
                holding.set()
                await release.wait()  # other I/O while the transaction is open
                await uow.commit()

        async def write_through_second() -> None:
            await holding.wait()
            async with second.unit_of_work() as uow:
                await uow.execute(sa.update(counters).values(value=sa.text("value + 1")))
                await uow.commit()

        async def ticker() -> None:
            nonlocal ticks
            while not release.is_set():
                ticks += 1
                await asyncio.sleep(0)

        holder = asyncio.create_task(hold_across_an_await())
        writer = asyncio.create_task(write_through_second())
        await holding.wait()
        tick = asyncio.create_task(ticker())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not writer.done(), "the second writer waits for the first"
        assert ticks >= 10, "the loop kept running meanwhile"
        release.set()
        await asyncio.gather(holder, writer, tick)
        assert await _value(second) == 2


async def test_another_process_holding_the_lock_is_waited_for_then_unavailable(
    tmp_path: Path,
) -> None:
    async with open_database(_sqlite(tmp_path, pool_timeout=0.3), "counters", MIGRATIONS) as db:
        # Another process's writer: a plain connection holding the write lock.
        other = sqlite3.connect(tmp_path / "counters.db", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            ticks = 0
            stop = asyncio.Event()

            async def ticker() -> None:
                nonlocal ticks
                while not stop.is_set():
                    ticks += 1
                    await asyncio.sleep(0.001)

            tick = asyncio.create_task(ticker())
            with pytest.raises(errors.Unavailable) as raised:
                async with db.unit_of_work() as uow:
                    await uow.execute(sa.insert(counters).values(id=1, value=1))
            stop.set()
            await tick
            assert raised.value.details["reason"] == "database_busy"
            assert ticks >= 10, "the loop ran while the writer waited"
            other.execute("ROLLBACK")

            # Freed while we wait: the unit of work goes ahead.
            other.execute("BEGIN IMMEDIATE")
            loop = asyncio.get_running_loop()
            loop.call_later(0.05, other.execute, "ROLLBACK")
            async with db.unit_of_work() as uow:
                await uow.execute(sa.insert(counters).values(id=1, value=1))
                await uow.commit()
            assert await _value(db) == 1
        finally:
            other.close()


async def test_a_failed_unit_of_work_leaves_the_writer_usable(tmp_path: Path) -> None:
    async with open_database(_sqlite(tmp_path), "counters", MIGRATIONS) as db:
        async with db.unit_of_work() as uow:
            await uow.execute(sa.insert(counters).values(id=1, value=1))
            await uow.commit()
        with pytest.raises(sa.exc.IntegrityError):
            async with db.unit_of_work() as uow:
                await uow.execute(sa.insert(counters).values(id=2, value=2))
                await uow.execute(sa.insert(counters).values(id=1, value=3))
        with pytest.raises(asyncio.CancelledError):
            async with db.unit_of_work() as uow:
                await uow.execute(sa.insert(counters).values(id=3, value=3))
                raise asyncio.CancelledError
        async with db.unit_of_work() as uow:
            await uow.execute(sa.update(counters).values(value=5))
            await uow.commit()
        rows = await db.read(lambda conn: conn.execute(sa.select(counters.c.id)).all())
        assert [row.id for row in rows] == [1], "nothing of the failed units stuck"
        assert await _value(db) == 5


async def test_uow_connection_still_runs_sync_work_and_driver_sql(tmp_path: Path) -> None:
    extra = sa.MetaData()
    sa.Table("extra", extra, sa.Column("id", sa.Integer, primary_key=True))
    async with open_database(_sqlite(tmp_path), "counters", MIGRATIONS) as db:
        async with db.unit_of_work() as uow:
            assert uow.connection.dialect.name == "sqlite"
            await uow.connection.run_sync(extra.create_all)
            await uow.connection.exec_driver_sql("INSERT INTO extra (id) VALUES (7)")
            await uow.commit()
        assert await db.read(lambda conn: conn.exec_driver_sql("SELECT id FROM extra").scalar())


async def test_commits_are_checkpointed_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ec_recommend.platform.storage import database

    monkeypatch.setattr(database, "CHECKPOINT_EVERY", 5)
    checkpoints: list[int] = []
    real = database._checkpoint

    def checkpoint(path: Path) -> None:
        checkpoints.append(threading.get_ident())
        real(path)

    monkeypatch.setattr(database, "_checkpoint", checkpoint)
    async with open_database(_sqlite(tmp_path), "counters", MIGRATIONS) as db:
        for n in range(10):
            async with db.unit_of_work() as uow:
                await uow.execute(sa.insert(counters).values(id=n, value=n))
                await uow.commit()
        await db.close()
    assert checkpoints, "a checkpoint ran"
    assert threading.get_ident() not in checkpoints


async def test_every_connection_to_the_file_keeps_a_small_page_cache(tmp_path: Path) -> None:
    """A reader's cache empties whenever the writer commits, and the writer's
    hot pages fit in a few hundred KiB: SQLite's 2 MB each only held memory."""
    pragma = sa.text("PRAGMA cache_size")
    async with open_database(_sqlite(tmp_path), "counters", MIGRATIONS) as db:
        async with db.unit_of_work() as uow:
            written = (await uow.execute(pragma)).scalar()
            await uow.commit()
        read = await db.read(lambda conn: conn.execute(pragma).scalar())
        async with db.reading() as conn:
            scanned = (await conn.execute(pragma)).scalar()
    assert (written, read, scanned) == (-CACHE_KIB, -CACHE_KIB, -CACHE_KIB)
    assert CACHE_KIB < 2000  # SQLite's default
