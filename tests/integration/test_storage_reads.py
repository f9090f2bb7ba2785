"""``Database.read``, ``first``, ``rows`` and ``fetch``: short reads see every
committed write and nothing uncommitted; ``first``, ``rows`` and ``fetch``
give what SQLAlchemy would (prepared on SQLite outside a recording span)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import TracerProvider

from ec_recommend.platform.storage import Migration, open_database
from ec_recommend.platform.storage.database import create_tables
from ec_recommend.platform.storage.inline_reads import InlineReader

pytestmark = pytest.mark.asyncio

META = sa.MetaData()
counters = sa.Table(
    "counters",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)
items = sa.Table(
    "items",
    META,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("price", sa.BigInteger, nullable=True),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
MIGRATIONS = [Migration(1, create_tables(META))]
BY_ID = sa.select(counters.c.value).where(counters.c.id == sa.bindparam("id"))
ITEM = sa.select(items).where(items.c.id == sa.bindparam("id"))
# a literal in the statement besides the parameter
BOOK = sa.select(items.c.id, items.c.tags).where(
    items.c.id == sa.bindparam("id"), items.c.kind == "book"
)
BY_KIND = (
    sa.select(items.c.id, items.c.price, items.c.created_at)
    .where(items.c.kind == sa.bindparam("kind"))
    .order_by(items.c.id)
)
ALL_COUNTERS = sa.select(counters).order_by(counters.c.id)
ITEMS = sa.select(items).where(items.c.id.in_(sa.bindparam("ids", expanding=True)))


def value_of(counter_id: int) -> Callable[[sa.Connection], int | None]:
    def read(conn: sa.Connection) -> int | None:
        return conn.execute(BY_ID, {"id": counter_id}).scalar()

    return read


async def test_each_read_sees_the_writes_committed_before_it(storage) -> None:
    async with open_database(storage, "counters", MIGRATIONS) as db:
        assert await db.read(value_of(1)) is None
        for value in (10, 11):
            async with db.unit_of_work() as uow:
                statement = sa.insert(counters) if value == 10 else sa.update(counters)
                await uow.execute(statement.values(id=1, value=value))
                await uow.commit()
            # no snapshot is held over from the previous read
            assert await db.read(value_of(1)) == value


async def test_a_read_during_an_open_write_sees_the_last_committed_state(storage) -> None:
    async with open_database(storage, "counters", MIGRATIONS) as db:
        async with db.unit_of_work() as uow:
            await uow.execute(sa.insert(counters).values(id=1, value=1))
            await uow.commit()
        async with db.unit_of_work() as uow:
            await uow.execute(sa.update(counters).values(value=2))
            assert await db.read(value_of(1)) == 1, "uncommitted change invisible, no wait"
        assert await db.read(value_of(1)) == 1, "rolled back"


async def test_a_failing_read_leaves_the_next_one_working(storage) -> None:
    async with open_database(storage, "counters", MIGRATIONS) as db:

        def broken(conn: sa.Connection) -> None:
            conn.execute(sa.text("SELECT no_such_column FROM counters"))

        with pytest.raises(sa.exc.DBAPIError):
            await db.read(broken)
        assert await db.read(value_of(1)) is None


async def add_item(db, item_id: str, kind: str = "book", price: int | None = 1200) -> None:
    async with db.unit_of_work() as uow:
        await uow.execute(
            sa.insert(items).values(
                id=item_id,
                kind=kind,
                price=price,
                tags=[{"name": "新刊", "rank": 1}],
                created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
            )
        )
        await uow.commit()


async def test_first_gives_the_row_sqlalchemy_gives(storage) -> None:
    async with open_database(storage, "items", MIGRATIONS) as db:
        await add_item(db, "a")
        await add_item(db, "b", kind="pen", price=None)
        for item_id in ("a", "b", "missing"):
            params = {"id": item_id}
            expected = await db.read(lambda conn, p=params: conn.execute(ITEM, p).first())
            row = await db.first(ITEM, params)
            if expected is None:
                assert row is None
                continue
            assert tuple(row) == tuple(expected)
            assert (row.id, row.tags, row.created_at) == (
                expected.id,
                expected.tags,
                expected.created_at,
            )
        assert (await db.first(BOOK, {"id": "a"})) == ("a", [{"name": "新刊", "rank": 1}])
        assert await db.first(BOOK, {"id": "b"}) is None, "the statement's literal applies"


async def test_first_sees_committed_writes_only_and_holds_no_snapshot(storage) -> None:
    async with open_database(storage, "counters", MIGRATIONS) as db:
        assert await db.first(BY_ID, {"id": 1}) is None
        async with db.unit_of_work() as uow:
            await uow.execute(sa.insert(counters).values(id=1, value=1))
            await uow.commit()
        assert await db.first(BY_ID, {"id": 1}) == (1,)
        async with db.unit_of_work() as uow:
            await uow.execute(sa.update(counters).values(value=2))
            assert await db.first(BY_ID, {"id": 1}) == (1,), "uncommitted change invisible"
            await uow.commit()
        assert await db.first(BY_ID, {"id": 1}) == (2,)
        assert await db.read(value_of(1)) == 2, "the other way agrees"


async def test_a_failing_first_raises_as_sqlalchemy_and_the_next_read_works(storage) -> None:
    async with open_database(storage, "counters", MIGRATIONS) as db:
        missing = sa.Table("missing", sa.MetaData(), sa.Column("id", sa.Integer))
        statement = sa.select(missing).where(missing.c.id == sa.bindparam("id"))
        raised = []
        for _ in range(2):  # through SQLAlchemy, then prepared (on SQLite)
            with pytest.raises(sa.exc.DBAPIError) as error:
                await db.first(statement, {"id": 1})
            raised.append((type(error.value), type(error.value.orig), str(error.value.orig)))
        assert raised[0] == raised[1]
        assert await db.first(BY_ID, {"id": 1}) is None
        assert await db.read(value_of(1)) is None


async def test_first_inside_a_recording_span_gives_the_same_row(storage) -> None:
    # (the statement's span itself: tests/integration/telemetry)
    async with open_database(storage, "items", MIGRATIONS) as db:
        await add_item(db, "a")
        untraced = await db.first(ITEM, {"id": "a"})
        with TracerProvider().get_tracer("test").start_as_current_span("request"):
            traced = await db.first(ITEM, {"id": "a"})
        assert tuple(traced) == tuple(untraced)


@pytest.mark.parametrize("storage", ["postgres"], indirect=True)
async def test_a_read_on_postgresql_opens_no_transaction(storage) -> None:
    # A one-statement read gains nothing from BEGIN .. ROLLBACK under READ
    # COMMITTED but two round trips; the pooled connection keeps its default
    # for the writes that reuse it.
    def in_transaction(conn: sa.Connection) -> bool:
        conn.execute(BY_ID, {"id": 1})
        driver = conn.connection.driver_connection
        assert driver is not None
        return bool(driver.is_in_transaction())

    async with open_database(storage, "counters", MIGRATIONS) as db:
        assert await db.read(in_transaction) is False
        async with db.unit_of_work() as uow:
            await uow.execute(sa.insert(counters).values(id=1, value=1))
            assert await uow.connection.run_sync(in_transaction) is True
            await uow.commit()
        assert await db.read(value_of(1)) == 1


def typed(rows: Any) -> Any:
    """Rows' names, values with their types, and mappings."""
    return [(row._fields, [(type(v), v) for v in row], dict(row._mapping)) for row in rows]


async def test_rows_give_the_rows_sqlalchemy_gives(storage) -> None:
    async with open_database(storage, "items", MIGRATIONS) as db:
        await add_item(db, "a")
        await add_item(db, "b", kind="pen", price=None)
        await add_item(db, "c")
        reads = [
            (BY_KIND, {"kind": "book"}),
            (BY_KIND, {"kind": "none"}),
            (ITEMS, {"ids": ["c", "a", "missing"]}),
            (ITEMS, {"ids": ["b"]}),
            (ITEMS, {"ids": []}),
        ]
        for _ in range(2):  # the second time prepared, on SQLite
            for statement, params in reads:
                expected = await db.read(
                    lambda conn, s=statement, p=params: conn.execute(s, p).all()
                )
                assert typed(await db.rows(statement, params)) == typed(expected)


async def test_fetch_takes_what_the_caller_takes_with_sqlalchemys_errors(storage) -> None:
    async with open_database(storage, "items", MIGRATIONS) as db:
        await add_item(db, "a")
        await add_item(db, "b")
        for _ in range(2):  # the second time prepared, on SQLite
            assert (await db.fetch(ITEM, {"id": "a"}, lambda r: r.one())).id == "a"
            assert await db.fetch(ITEM, {"id": "x"}, lambda r: r.scalar_one_or_none()) is None
            with pytest.raises(sa.exc.NoResultFound):
                await db.fetch(ITEM, {"id": "x"}, lambda r: r.one())
            with pytest.raises(sa.exc.MultipleResultsFound):
                await db.fetch(BY_KIND, {"kind": "book"}, lambda r: r.one_or_none())


@pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
async def test_reads_by_a_statement_run_prepared_from_the_second_outside_a_span(
    storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared: list[str] = []
    run_prepared = InlineReader.run_prepared

    def counted(reader: InlineReader, statement: Any, values: Any) -> Any:
        prepared.append(statement.sql.split(None, 1)[0])
        return run_prepared(reader, statement, values)

    monkeypatch.setattr(InlineReader, "run_prepared", counted)
    async with open_database(storage, "items", MIGRATIONS) as db:
        await add_item(db, "a")
        for n in range(3):
            assert len(await db.rows(ITEMS, {"ids": ["a", "b"]})) == 1
            assert len(prepared) == n, "the first read of a statement: SQLAlchemy's way"
        with TracerProvider().get_tracer("test").start_as_current_span("request"):
            assert len(await db.rows(ITEMS, {"ids": ["a", "b"]})) == 1
            assert (await db.first(ITEM, {"id": "a"})) is not None
        assert len(prepared) == 2, "a recording span takes SQLAlchemy's way"
        per_call = [
            await db.first(
                sa.select(items.c.id).where(items.c.id == sa.bindparam("id")), {"id": "a"}
            )
            for _ in range(2)
        ]
        assert per_call == [("a",), ("a",)]
        assert len(prepared) == 2, "a statement built per call is not prepared"


ADD_COUNTER = sa.insert(counters).values(id=sa.bindparam("id"), value=sa.bindparam("value"))
BUMP = (
    sa.update(counters)
    .where(counters.c.id == sa.bindparam("b_id"))
    .values(value=counters.c.value + 1)
    .returning(counters.c.value)
)


async def test_a_write_of_one_statement_commits_it_or_leaves_nothing(storage) -> None:
    async with open_database(storage, "counters", MIGRATIONS) as db:
        for _ in range(2):  # through SQLAlchemy, then prepared
            await db.write(
                ADD_COUNTER, {"id": len(await db.rows(ALL_COUNTERS, {})) + 1, "value": 1}
            )
        with pytest.raises(sa.exc.IntegrityError):
            await db.write(ADD_COUNTER, {"id": 1, "value": 7})
        assert [tuple(r) for r in await db.rows(ALL_COUNTERS, {})] == [(1, 1), (2, 1)]
        assert await db.write(BUMP, {"b_id": 2}, lambda result: result.scalar_one()) == 2
        assert await db.write(BUMP, {"b_id": 9}, lambda result: result.first()) is None
        with TracerProvider().get_tracer("test").start_as_current_span("request"):
            assert await db.write(BUMP, {"b_id": 2}, lambda result: result.scalar_one()) == 3
        # The connection a failed write used serves the next unit of work.
        async with db.unit_of_work() as uow:
            await uow.execute(ADD_COUNTER, {"id": 3, "value": 1})
            await uow.commit()
        assert len(await db.rows(ALL_COUNTERS, {})) == 3


@pytest.mark.parametrize("storage", ["postgres"], indirect=True)
async def test_a_write_on_postgresql_sends_no_begin_or_commit(storage) -> None:
    # The statement is its own transaction on the server: BEGIN and COMMIT
    # would be two more round trips for nothing.
    sent: list[str] = []

    def log(query: Any) -> None:
        sent.append(query.query.split()[0].rstrip(";").upper())

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(log)

    def checkin(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.driver_connection.remove_query_logger(log)

    async with open_database(storage, "counters", MIGRATIONS) as db:
        pool = db.engine.sync_engine.pool
        sa.event.listen(pool, "checkout", checkout)
        sa.event.listen(pool, "checkin", checkin)
        try:
            for n in (1, 2):  # through SQLAlchemy, then prepared
                await db.write(ADD_COUNTER, {"id": n, "value": 1})
            assert sent == []
            # asyncpg logs the BEGIN of a transaction (not its prepared
            # statements, nor its COMMIT): a unit of work shows one.
            async with db.unit_of_work() as uow:
                await uow.execute(ADD_COUNTER, {"id": 3, "value": 1})
                await uow.commit()
            assert sent == ["BEGIN"]
        finally:
            sa.event.remove(pool, "checkout", checkout)
            sa.event.remove(pool, "checkin", checkin)
        assert len(await db.rows(ALL_COUNTERS, {})) == 3
