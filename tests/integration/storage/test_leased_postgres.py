"""A read by key and a one-statement write on PostgreSQL lease a connection
from the pool for just their statement (``platform/storage/leased.py``).

They skip ``AsyncEngine.connect()``, but what a caller depends on stays:
each runs in autocommit and the connection goes back to the pool as it came
(a unit of work on it is a transaction again); with every connection taken
the caller gets the typed ``database_busy`` after the pool's timeout (a
unit of work too, whose checkout and begin share one greenlet); a
failed connect is ``database_unavailable``; a write cancelled on a row lock
leaves no lock or transaction behind.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ec_recommend.config import StorageConfig
from ec_recommend.platform import errors
from ec_recommend.platform.storage import Database, open_database
from tests.conftest import POSTGRES_URL, _drop_schemas, require_service, wait_for
from tests.integration.storage.test_prepared_postgres import (
    BUMP,
    bump,
    cancel_a_bump_at,
    cancel_once_it_waits_on_a_lock,
    schema_of,
)
from tests.integration.storage.test_prepared_statements import (
    ADD_ITEM,
    BY_ID,
    MIGRATIONS,
    item,
    seed,
)

pytestmark = pytest.mark.asyncio

POOL_TIMEOUT = 0.3


@pytest_asyncio.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A seeded database whose process pool holds one connection."""
    require_service(POSTGRES_URL, 5432, "PostgreSQL")
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    storage = StorageConfig(
        data_dir=tmp_path,
        database_url=POSTGRES_URL,
        schema_prefix=prefix,
        pool_size=1,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT,
    )
    try:
        async with open_database(storage, "items", MIGRATIONS) as database:
            await seed(database)
            for _ in range(2):  # seen once, then prepared
                await database.first(BY_ID, {"id": "a"})
                await database.write(BUMP, {"b_id": "b"})
            yield database
    finally:
        await _drop_schemas(prefix)


async def _stock(item_id: str, schema: str) -> int:
    """What another session sees: only what was committed."""
    watcher = await asyncpg.connect(POSTGRES_URL)
    try:
        return int(
            await watcher.fetchval(f'SELECT stock FROM "{schema}".items WHERE id = $1', item_id)
        )
    finally:
        await watcher.close()


async def test_reads_and_writes_lease_from_the_pool_and_commit_at_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_here(*_: Any, **__: Any) -> Any:
        raise AssertionError("took a connection through AsyncEngine.connect()")

    monkeypatch.setattr(AsyncEngine, "connect", not_here)
    row = await db.first(BY_ID, {"id": "a"})
    assert row is not None and row.id == "a"
    before = await _stock("a", schema_of(db))
    bumped = await db.write(BUMP, {"b_id": "a"}, lambda result: result.scalar_one())
    assert bumped == before + 1
    assert await _stock("a", schema_of(db)) == bumped, "committed when the write returned"
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_the_leased_connection_goes_back_to_the_pool_as_it_came(db: Database) -> None:
    # The pool has one connection: the write's, then the unit of work's. Left
    # in autocommit, the unit's INSERT would stay although it never commits.
    await db.write(BUMP, {"b_id": "a"})
    async with db.unit_of_work() as uow:
        await uow.execute(ADD_ITEM, item("never"))
    assert await db.first(BY_ID, {"id": "never"}) is None
    async with db.unit_of_work() as uow:
        await uow.execute(ADD_ITEM, item("kept"))
        await uow.commit()
    assert await db.first(BY_ID, {"id": "kept"}) is not None


async def test_with_every_connection_taken_reads_writes_and_units_are_database_busy(
    db: Database,
) -> None:
    async def another_unit() -> None:
        async with db.unit_of_work() as other:
            await other.execute(BY_ID, {"id": "a"})

    async with db.unit_of_work() as uow:
        await uow.execute(BY_ID, {"id": "a"})  # holds the pool's one connection
        for attempt in (
            db.first(BY_ID, {"id": "a"}),
            db.write(BUMP, {"b_id": "a"}),
            another_unit(),
        ):
            with pytest.raises(errors.Unavailable) as refused:
                await attempt
            assert refused.value.details["reason"] == "database_busy"
    row = await db.first(BY_ID, {"id": "a"})
    assert row is not None and row.id == "a"


async def test_a_connection_that_cannot_be_opened_is_database_unavailable(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await db.engine.dispose()  # the next checkout opens a connection

    async def refused(*_: Any, **__: Any) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(asyncpg, "connect", refused)
    with pytest.raises(errors.Unavailable) as unavailable:
        await db.first(BY_ID, {"id": "a"})
    assert unavailable.value.details["reason"] == "database_unavailable"
    monkeypatch.undo()
    row = await db.first(BY_ID, {"id": "a"})
    assert row is not None and row.id == "a"


async def test_a_write_cancelled_on_a_row_lock_leaves_the_pool_clean(db: Database) -> None:
    schema = schema_of(db)
    blocker = await asyncpg.connect(POSTGRES_URL)
    try:
        await blocker.execute("BEGIN")
        await blocker.execute(f'UPDATE "{schema}".items SET stock = stock WHERE id = $1', "a")
        writing = asyncio.create_task(db.write(BUMP, {"b_id": "a"}))
        await cancel_once_it_waits_on_a_lock(writing, blocker)
        await blocker.execute("ROLLBACK")
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]

        async def no_statement_of_ours_is_left() -> bool:
            # The cancelled UPDATE ends once the lock is free (it may still
            # land: a cancelled write's outcome is unknown), and with it its
            # server process, the connection dropped. Nothing on our schema
            # runs, waits or holds a transaction then, but the pool's idle
            # connection.
            left = await blocker.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND state <> 'idle' AND position($1 in query) > 0",
                schema,
            )
            return left == 0

        await wait_for(no_statement_of_ours_is_left, timeout=10)
    finally:
        await blocker.close()
    before = await _stock("a", schema)
    for expected in (before + 1, before + 2):  # the pool's connection works, in autocommit
        assert await db.write(BUMP, {"b_id": "a"}, lambda result: result.scalar_one()) == expected
        assert await _stock("a", schema) == expected


async def test_a_commit_the_server_refuses_raises_as_before_and_keeps_nothing(
    db: Database,
) -> None:
    # A deferred constraint is checked at COMMIT: the commit itself fails.
    schema = schema_of(db)
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(
            f'CREATE TABLE "{schema}".deferred (id int,'
            " CONSTRAINT once UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)"
        )
        with pytest.raises(sa.exc.IntegrityError):
            async with db.unit_of_work() as uow:
                await uow.execute(BUMP, {"b_id": "a"})  # prepared, in the transaction
                for _ in range(2):
                    await uow.execute(sa.text(f'INSERT INTO "{schema}".deferred (id) VALUES (1)'))
                await uow.commit()
        assert await admin.fetchval(f'SELECT count(*) FROM "{schema}".deferred') == 0
    finally:
        await admin.close()
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    before = await _stock("a", schema)
    async with db.unit_of_work() as uow:  # the connection went back clean
        await uow.execute(BUMP, {"b_id": "a"})
        await uow.commit()
    assert await _stock("a", schema) == before + 1


async def test_a_commit_cancelled_before_it_went_out_drops_its_connection(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The caller's deadline lands while the COMMIT waits to be sent. Kept,
    # the connection would hold the server's open transaction (and its row
    # lock) into the next unit of work, whose COMMIT would commit both.
    schema = schema_of(db)
    before = await _stock("a", schema)
    await cancel_a_bump_at(db, monkeypatch, "COMMIT", sent=False)
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    for expected in (before + 1, before + 2):  # never committed; each bump now once
        await bump(db)
        assert await _stock("a", schema) == expected
