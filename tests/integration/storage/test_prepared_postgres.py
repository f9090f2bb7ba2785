"""Prepared statements give what SQLAlchemy gives, on PostgreSQL too.

The cases of ``test_prepared_statements`` run on one database (a schema of
the server, named only by the engine's ``schema_translate_map``), seeded
afresh for each run: through SQLAlchemy's ``Connection.execute``, then
prepared through the asyncpg adapter's cursor. SQLite's upserts become
PostgreSQL's. The rows, rowcount, inserted key, the error raised and the
tables after it must be the same: expanding ``IN`` (its values numbered
after the other parameters) and serial keys (RETURNING added by the
dialect) included. Then what a unit of work and a bounded read do on this
server (two databases, two schemas): run a
statement seen before prepared, in the transaction and the schema of the
unit, and drop a connection the server closed as SQLAlchemy would.
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
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from ec_recommend.config import StorageConfig
from ec_recommend.platform.storage import Database, open_database
from ec_recommend.platform.storage.prepared import PreparedStatement
from ec_recommend.platform.storage.results import PreparedResult
from tests.conftest import POSTGRES_URL, _drop_schemas, require_service, wait_for
from tests.integration.storage import test_prepared_statements as on_sqlite
from tests.integration.storage.test_prepared_statements import (
    ADD_ITEM,
    BY_ID,
    CASES,
    MIGRATIONS,
    Case,
    contents,
    item,
    items,
    prepare,
    seed,
    what_it_gave,
    what_it_raised,
)

pytestmark = pytest.mark.asyncio

_ADD_ITEM_ONCE = postgresql.insert(items).on_conflict_do_nothing().returning(items.c.id)
_ADD_STOCK = postgresql.insert(items)
_ADD_STOCK = _ADD_STOCK.on_conflict_do_update(
    index_elements=["id"], set_={"stock": items.c.stock + _ADD_STOCK.excluded.stock}
)
# SQLite's statements and PostgreSQL's that do the same
ON_POSTGRES = {
    id(on_sqlite.ADD_ITEM_ONCE): _ADD_ITEM_ONCE,
    id(on_sqlite.ADD_STOCK): _ADD_STOCK,
    id(on_sqlite.ADD_STOCK_RETURNING): _ADD_STOCK.returning(items.c.id, items.c.stock),
    id(on_sqlite.ADD_ITEM_QUIETLY): postgresql.insert(items).on_conflict_do_nothing(),
}


@pytest_asyncio.fixture
async def databases(tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    """Two schemas seeded alike: SQLAlchemy's and the prepared statements'."""
    require_service(POSTGRES_URL, 5432, "PostgreSQL")
    prefix = f"t{uuid.uuid4().hex[:10]}_"

    def storage(side: str) -> StorageConfig:
        return StorageConfig(
            data_dir=tmp_path, database_url=POSTGRES_URL, schema_prefix=f"{prefix}{side}_"
        )

    try:
        async with (
            open_database(storage("one"), "items", MIGRATIONS) as one,
            open_database(storage("two"), "items", MIGRATIONS) as two,
        ):
            for db in (one, two):
                await seed(db)
            yield one, two
    finally:
        await _drop_schemas(prefix)


async def outcome(db: Database, case: Case, *, prepared: bool) -> Any:
    """As ``test_prepared_statements.outcome``, in SQLAlchemy's greenlet
    (prepared: on the adapter's cursor)."""

    def run(connection: sa.Connection) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        try:
            if prepared:
                schemas = connection.get_execution_options()["schema_translate_map"]
                statement = prepare(case.statement, connection.dialect, case.params, schemas)
                result: Any = statement.run(
                    connection, statement.bind_all(case.params), case.params
                )
                assert isinstance(result, PreparedResult)
            else:
                result = connection.execute(case.statement, case.params)
        except sa.exc.DBAPIError as exc:
            seen["error"] = what_it_raised(exc)
            seen["tables in the failed transaction"] = _unless_aborted(connection)
            return seen
        return seen | what_it_gave(result, case.take)

    async with db.unit_of_work() as uow:
        seen = await uow.connection.run_sync(run)
        if "error" not in seen:
            await uow.commit()
    return seen, await db.read(contents)


# Executemanys without RETURNING: the driver's executemany, on the adapter's
# cursor (``outcome`` compares them); every other case runs on asyncpg.
ON_THE_CURSOR = {
    "insert many",
    "insert many, the last a duplicate",
    "update executemany",
    "insert many, datetimes",
    "insert many on conflict, some existing",
    "insert many, a null mid-batch",
}


async def outcome_on_asyncpg(db: Database, case: Case) -> Any:
    """``outcome`` prepared, run on asyncpg directly (``run_async``), outside
    SQLAlchemy's greenlet, as units of work and bounded reads run it; None
    when the statement does not run that way."""
    seen: dict[str, Any] = {}
    async with db.unit_of_work() as uow:
        connection = uow.connection
        assert isinstance(connection, AsyncConnection) and connection.sync_connection is not None
        schemas = connection.sync_connection.get_execution_options()["schema_translate_map"]
        statement = prepare(case.statement, connection.dialect, case.params, schemas)
        if not statement.runs_on_asyncpg:
            return None
        try:
            result = await statement.run_async(
                connection, statement.bind_all(case.params), case.params
            )
        except sa.exc.DBAPIError as exc:
            seen["error"] = what_it_raised(exc)
            seen["tables in the failed transaction"] = await connection.run_sync(_unless_aborted)
        else:
            seen.update(what_it_gave(result, case.take))
            await uow.commit()
    return seen, await db.read(contents)


def _unless_aborted(connection: sa.Connection) -> Any:
    """The tables, read in the failed transaction: PostgreSQL refuses any
    statement there (a savepoint would hide what is compared)."""
    try:
        return contents(connection)
    except sa.exc.DBAPIError as exc:
        return type(exc.orig).__name__


def _on_postgres(case: Case) -> Case:
    statement = ON_POSTGRES.get(id(case.statement), case.statement)
    return Case(statement, case.params, case.take)


async def _reseeded(db: Database) -> Database:
    """``db`` as seeded, its keys counted from 1 again."""
    async with db.unit_of_work() as uow:
        tables = ", ".join(f'"{db.schema}".{name}' for name in ("items", "numbers", "attempts"))
        await uow.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY"))
        await uow.commit()
    await seed(db)
    return db


@pytest.mark.parametrize("name", list(CASES))
async def test_a_prepared_statement_gives_what_sqlalchemy_gives(
    databases: tuple[Database, Database], name: str
) -> None:
    """One after the other in one schema, so that an error's SQL (shortened
    past a length, its schema in it) reads alike."""
    db, _ = databases
    case = _on_postgres(CASES[name])
    expected = await outcome(await _reseeded(db), case, prepared=False)
    assert await outcome(await _reseeded(db), case, prepared=True) == expected
    on_asyncpg = await outcome_on_asyncpg(await _reseeded(db), case)
    assert on_asyncpg == (None if name in ON_THE_CURSOR else expected)


async def test_a_unit_of_work_prepares_a_statement_run_again_in_its_own_schema(
    databases: tuple[Database, Database],
) -> None:
    one, two = databases
    async with two.unit_of_work() as uow:
        await uow.execute(ADD_ITEM, item("c"))
        again = await uow.execute(ADD_ITEM, item("d"))
        assert isinstance(again, PreparedResult)
        assert tuple(again.inserted_primary_key) == ("d",)
        mine = await uow.execute(BY_ID, {"id": "d"})  # first seen by this database's cache
        assert isinstance(mine, sa.CursorResult)
        seen = await uow.execute(BY_ID, {"id": "d"})
        assert isinstance(seen, PreparedResult)
        assert seen.one().id == "d", "the unit's own uncommitted row: its transaction"
        await uow.commit()
    for db, expected in ((one, None), (two, "d")):
        row = await db.first(BY_ID, {"id": "d"})
        row = await db.first(BY_ID, {"id": "d"})  # prepared by now
        assert (row.id if row else None) == expected, "each database its own schema"


async def test_units_of_work_and_reads_run_prepared_statements_outside_the_greenlet(
    databases: tuple[Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cursor's way in SQLAlchemy's greenlet (``run``) is for executemanys
    only: a prepared statement of a unit of work, a read and a one-statement
    write run on asyncpg directly."""
    _, db = databases
    for _ in range(2):  # seen once, then prepared
        async with db.unit_of_work() as uow:
            await uow.execute(BY_ID, {"id": "a"})
        await db.first(BY_ID, {"id": "a"})
        await db.write(BUMP, {"b_id": "a"})

    def not_here(*_: Any) -> Any:
        raise AssertionError("ran on the adapter's cursor")

    monkeypatch.setattr(PreparedStatement, "run", not_here)
    async with db.unit_of_work() as uow:
        assert isinstance(await uow.execute(BY_ID, {"id": "a"}), PreparedResult)
    row = await db.first(BY_ID, {"id": "a"})
    assert row is not None and row.id == "a"
    assert await db.write(BUMP, {"b_id": "a"}, lambda result: result.scalar_one()) == 3


async def test_a_unit_of_work_that_does_not_commit_leaves_nothing(
    databases: tuple[Database, Database],
) -> None:
    _, db = databases
    for n in range(2):
        async with db.unit_of_work() as uow:
            result = await uow.execute(ADD_ITEM, item(f"x{n}"))
    assert isinstance(result, PreparedResult)
    assert await db.first(BY_ID, {"id": "x1"}) is None
    with pytest.raises(sa.exc.IntegrityError):
        async with db.unit_of_work() as uow:
            await uow.execute(ADD_ITEM, item("y"))
            await uow.execute(ADD_ITEM, item("a"))  # prepared: a duplicate
    assert await db.first(BY_ID, {"id": "y"}) is None


async def test_a_connection_the_server_closed_is_not_handed_out_again(
    databases: tuple[Database, Database],
) -> None:
    _, db = databases
    async with db.unit_of_work() as uow:
        await uow.execute(BY_ID, {"id": "a"})  # seen: prepared from now on
    with pytest.raises(sa.exc.DBAPIError) as dropped:
        async with db.unit_of_work() as uow:
            pid = (await uow.execute(sa.text("SELECT pg_backend_pid()"))).scalar()
            killer = await asyncpg.connect(POSTGRES_URL)
            try:
                await killer.execute("SELECT pg_terminate_backend($1)", pid)
            finally:
                await killer.close()
            await uow.execute(BY_ID, {"id": "a"})  # prepared, on the closed connection
    assert dropped.value.connection_invalidated, "invalidated, as SQLAlchemy would"
    for _ in range(db.engine.pool.size() + 2):  # every pooled connection works
        row = await db.first(BY_ID, {"id": "a"})
        assert row is not None and row.id == "a"


BUMP = (
    sa.update(items)
    .where(items.c.id == sa.bindparam("b_id"))
    .values(stock=items.c.stock + 1)
    .returning(items.c.stock)
)


async def cancel_once_it_waits_on_a_lock(
    task: asyncio.Task[Any], blocker: asyncpg.Connection
) -> None:
    """Cancel ``task`` once a session but ``blocker`` waits on a lock (its row
    lock), as a caller's deadline would; the task ends cancelled."""

    async def waits_on_a_lock() -> bool:
        return bool(
            await blocker.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        )

    await wait_for(waits_on_a_lock, timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def bump(db: Database) -> None:
    """A unit of work that bumps item a's stock and commits."""
    async with db.unit_of_work() as uow:
        await uow.execute(BUMP, {"b_id": "a"})
        await uow.commit()


async def cancel_a_bump_at(
    db: Database, monkeypatch: pytest.MonkeyPatch, statement: str, *, sent: bool
) -> None:
    """Run ``bump`` and cancel it, as a caller's deadline would, while its
    ``statement`` (BEGIN, COMMIT) is held: sent but its reply not heard yet
    (``sent``), or not sent yet."""
    execute = asyncpg.Connection.execute
    held = asyncio.Event()
    never = asyncio.Event()

    async def held_back(self: asyncpg.Connection, query: str, *args: Any) -> Any:
        hold = query.startswith(statement) and not held.is_set()
        if hold and not sent:
            held.set()
            await never.wait()
        status = await execute(self, query, *args)
        if hold:
            held.set()
            await never.wait()
        return status

    monkeypatch.setattr(asyncpg.Connection, "execute", held_back)
    cancelled = asyncio.create_task(bump(db))
    await asyncio.wait_for(held.wait(), timeout=10)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    monkeypatch.undo()


def schema_of(db: Database) -> str:
    """The server schema ``db``'s tables live in."""
    return str(db.engine.get_execution_options()["schema_translate_map"][None])


async def _bump_prepared(db: Database) -> str:
    """Run ``BUMP`` until it runs prepared (uncommitted); ``db``'s schema."""
    for _ in range(2):
        async with db.unit_of_work() as uow:
            await uow.execute(BUMP, {"b_id": "a"})
    return schema_of(db)


async def test_a_statement_cancelled_mid_flight_leaves_no_transaction_behind(
    databases: tuple[Database, Database],
) -> None:
    # A caller's deadline cancels a unit of work while its statement waits on
    # a row lock: its row locks go with it, and the pool's connections start
    # clean transactions. (This case held before the fix below too; the
    # cancellation that broke it is the one at BEGIN, in the next test.)
    _, db = databases
    schema = await _bump_prepared(db)
    blocker = await asyncpg.connect(POSTGRES_URL)
    try:
        await blocker.execute("BEGIN")
        await blocker.execute(f'UPDATE "{schema}".items SET stock = stock WHERE id = $1', "b")

        async def bump_both() -> None:
            async with db.unit_of_work() as uow:
                await uow.execute(BUMP, {"b_id": "a"})  # locks a
                await uow.execute(BUMP, {"b_id": "b"})  # waits for the blocker

        await cancel_once_it_waits_on_a_lock(asyncio.create_task(bump_both()), blocker)
        await blocker.execute("ROLLBACK")

        async def a_is_free() -> bool:
            try:
                await blocker.execute("BEGIN")
                await blocker.execute(
                    f'SELECT id FROM "{schema}".items WHERE id = $1 FOR UPDATE NOWAIT', "a"
                )
                return True
            except asyncpg.LockNotAvailableError:
                return False
            finally:
                await blocker.execute("ROLLBACK")

        await wait_for(a_is_free, timeout=10)
    finally:
        await blocker.close()
    # Every pooled connection starts a clean transaction: a bump is seen once.
    for expected in (1, 2, 3):
        async with db.unit_of_work() as uow:
            bumped = (await uow.execute(BUMP, {"b_id": "a"})).scalar_one()
            await uow.commit()
        assert bumped == expected


async def test_a_unit_of_work_cancelled_at_its_begin_leaves_no_transaction_behind(
    databases: tuple[Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A caller's deadline lands while the BEGIN of a unit of work is in
    # flight: the server has begun, the driver has not heard back. asyncpg
    # then keeps that transaction as the connection's outer one, and
    # SQLAlchemy's adapter does not know of it. Unless the connection is
    # dropped, as SQLAlchemy drops it on its own way, every later unit of
    # work on it is a savepoint inside that transaction, never committed,
    # and holds its row locks: under short deadlines on PostgreSQL reserved
    # stock was never released and writes were lost.
    _, db = databases
    schema = await _bump_prepared(db)
    await cancel_a_bump_at(db, monkeypatch, "BEGIN", sent=True)
    # Every pooled connection commits for real: another session sees each bump.
    watcher = await asyncpg.connect(POSTGRES_URL)
    try:
        for expected in range(1, db.engine.pool.size() + 3):
            await bump(db)
            stock = await watcher.fetchval(f'SELECT stock FROM "{schema}".items WHERE id = $1', "a")
            assert stock == expected
        open_transactions = await watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
        )
        assert open_transactions == 0
    finally:
        await watcher.close()
