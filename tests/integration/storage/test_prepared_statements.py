"""Prepared statements give what SQLAlchemy gives, on a real SQLite file.

Each case runs one statement in a unit of work on two databases seeded
alike: through SQLAlchemy's ``Connection.execute`` on one, prepared
(``PreparedStatement``) on the other. The rows (their values and types,
names and mappings), rowcount, inserted primary key, the error raised and
the table contents within the transaction after an error and after it
ends must be the same; with expanding parameters (``IN``) too, prepared
for the number of values given, and executemany with RETURNING, prepared
for the number of rows given. Then the policy of ``UnitOfWork.execute``:
which runs are prepared and which go through SQLAlchemy.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.dialects import sqlite

from ec_recommend.config import StorageConfig
from ec_recommend.platform.storage import Database, Migration, open_database
from ec_recommend.platform.storage import prepared as prepared_module
from ec_recommend.platform.storage.database import create_tables
from ec_recommend.platform.storage.prepared import (
    Expanding,
    ManyRows,
    NotPreparable,
    PreparedStatement,
    PreparedStatements,
)
from ec_recommend.platform.storage.results import PreparedResult

pytestmark = pytest.mark.asyncio

META = sa.MetaData()
items = sa.Table(
    "items",
    META,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("price", sa.BigInteger, nullable=True),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stock", sa.Integer, nullable=False, server_default="0"),
)
numbers = sa.Table(
    "numbers",
    META,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(16), nullable=False, unique=True),
)
attempts = sa.Table(
    "attempts",
    META,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False, default=0),  # Python-side
)
MIGRATIONS = [Migration(1, create_tables(META))]

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
LATER = datetime(2026, 2, 3, 4, 5, 6, 7, tzinfo=UTC)


def item(item_id: str, kind: str = "book", price: int | None = 1200) -> dict[str, Any]:
    return {
        "id": item_id,
        "kind": kind,
        "price": price,
        "tags": [{"name": "新刊", "rank": 1}],
        "created_at": WHEN,
    }


ADD_ITEM = sa.insert(items)
ADD_NUMBER = sa.insert(numbers)
ADD_ITEM_ONCE = sqlite.insert(items).on_conflict_do_nothing().returning(items.c.id)
ADD_STOCK = sqlite.insert(items)
ADD_STOCK = ADD_STOCK.on_conflict_do_update(
    index_elements=["id"], set_={"stock": items.c.stock + ADD_STOCK.excluded.stock}
)
ADD_STOCK_RETURNING = ADD_STOCK.returning(items.c.id, items.c.stock)
ADD_ITEM_RETURNING = sa.insert(items).returning(
    items.c.id, items.c.tags, items.c.created_at, items.c.stock
)
ADD_ITEM_QUIETLY = sqlite.insert(items).on_conflict_do_nothing()
ADD_ITEM_RETURNING_MORE = sa.insert(items).returning(  # a parameter after the rows' values
    items.c.id, (items.c.price + sa.bindparam("b_more", type_=sa.Integer)).label("more")
)
RENAME_KIND = (
    sa.update(items)
    .where(items.c.kind == sa.bindparam("b_kind"))
    .values(kind=sa.bindparam("b_new"), created_at=sa.bindparam("b_when"))
)
REPRICE = (
    sa.update(items)
    .where(items.c.id == sa.bindparam("b_id"), items.c.kind == "book")  # a literal too
    .returning(*items.c)
)
ADD_TO_STOCK = (
    sa.update(items)
    .where(items.c.id == sa.bindparam("b_id"))
    .values(stock=items.c.stock + sa.bindparam("b_n", type_=sa.Integer))
)
REMOVE_KIND = sa.delete(items).where(items.c.kind == sa.bindparam("kind"))
REMOVE_RETURNING = (
    sa.delete(items).where(items.c.id == sa.bindparam("id")).returning(items.c.id, items.c.tags)
)
BY_KIND = (
    sa.select(items.c.id, items.c.price, items.c.tags, items.c.created_at)
    .where(items.c.kind == sa.bindparam("kind"))
    .order_by(items.c.id)
)
BY_ID = sa.select(items).where(items.c.id == sa.bindparam("id"))
COUNT_KIND = sa.select(sa.func.count()).where(items.c.kind == sa.bindparam("kind"))
WITH_NUMBER = sa.select(items.c.id, numbers.c.seq, numbers.c.name).join(
    numbers, numbers.c.name == items.c.kind
)
BY_IDS = (
    sa.select(items.c.id, items.c.kind, items.c.created_at)
    .where(items.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(items.c.id)
)
AT_TIMES = sa.select(items.c.id).where(
    items.c.created_at.in_(sa.bindparam("whens", expanding=True))  # a bind processor
)
PRICED_BOOKS_OR_PENS = (
    sa.select(items.c.id)
    .where(items.c.kind.in_(("book", "pen")), items.c.price == sa.bindparam("price"))
    .order_by(items.c.id)
)
_IDS = sa.bindparam("ids", expanding=True)
IDS_OR_KINDS = (
    sa.select(items.c.id).where(sa.or_(items.c.id.in_(_IDS), items.c.kind.in_(_IDS)))
).order_by(items.c.id)
IDS_BUT_KIND = (  # a parameter named as SQLAlchemy would name an element of ``ids``
    sa.select(items.c.id)
    .where(
        items.c.id.in_(sa.bindparam("ids", expanding=True)), items.c.kind != sa.bindparam("ids_1")
    )
    .order_by(items.c.id)
)
RESTOCK_IDS = (
    sa.update(items)
    .where(items.c.id.in_(sa.bindparam("b_ids", expanding=True)))
    .values(stock=sa.bindparam("b_stock"))
)
REMOVE_IDS_RETURNING = (
    sa.delete(items)
    .where(items.c.id.in_(sa.bindparam("ids", expanding=True)))
    .returning(items.c.id)
)


@dataclass(frozen=True)
class Case:
    statement: Any
    params: Any
    take: str = "all"  # how the caller takes the result


CASES = {
    "insert": Case(ADD_ITEM, item("c")),
    "insert a list of one row": Case(ADD_ITEM, [item("c")]),
    "insert, autoincrement key": Case(ADD_NUMBER, {"name": "two"}),
    "insert, autoincrement key, rows asked for": Case(
        ADD_NUMBER, {"name": "two"}, "first then all then scalar"
    ),
    "insert, autoincrement key given": Case(ADD_NUMBER, {"seq": 7, "name": "seven"}),
    "insert a null and a server default": Case(ADD_ITEM, {**item("c", price=None), "stock": 3}),
    "insert many": Case(ADD_ITEM, [item("c"), item("d", "pen"), item("e", price=None)]),
    "insert a duplicate key": Case(ADD_ITEM, item("a")),
    "insert many, the last a duplicate": Case(ADD_ITEM, [item("c"), item("a")]),
    "insert a null into a not-null column": Case(ADD_ITEM, {**item("c"), "kind": None}),
    "insert on conflict returning, new": Case(ADD_ITEM_ONCE, item("c"), "first"),
    "insert on conflict returning, existing": Case(ADD_ITEM_ONCE, item("a"), "first"),
    "upsert": Case(ADD_STOCK, {**item("a"), "stock": 5}),
    "update many rows": Case(RENAME_KIND, {"b_kind": "book", "b_new": "novel", "b_when": LATER}),
    "update no row": Case(RENAME_KIND, {"b_kind": "none", "b_new": "x", "b_when": LATER}),
    "update returning": Case(REPRICE, {"b_id": "a", "price": 900}, "first"),
    "update returning, no row by the literal": Case(REPRICE, {"b_id": "b", "price": 1}, "first"),
    "update returning, one": Case(REPRICE, {"b_id": "a", "price": None}, "one"),
    "update returning, the literal given by name": Case(
        REPRICE, {"b_id": "p", "price": 1, "kind_1": "pen"}, "first"
    ),
    "update executemany": Case(ADD_TO_STOCK, [{"b_id": "a", "b_n": 2}, {"b_id": "b", "b_n": 3}]),
    "insert many, datetimes": Case(ADD_ITEM, [item("c"), {**item("d"), "created_at": LATER}]),
    "insert many on conflict, some existing": Case(
        ADD_ITEM_QUIETLY, [item("c"), item("a"), item("d"), item("c")]
    ),
    "insert many, a null mid-batch": Case(
        ADD_ITEM, [item("c"), {**item("d", price=None), "kind": None}, item("e")]
    ),
    "insert many returning": Case(
        ADD_ITEM_RETURNING,
        [item("c"), item("d", "pen"), {**item("e", price=None), "created_at": LATER}],
    ),
    "insert many returning, iterated": Case(ADD_ITEM_RETURNING, [item("c"), item("d")], "iter"),
    "insert many returning, first": Case(ADD_ITEM_RETURNING, [item("c"), item("d")], "first"),
    "insert many returning, a key only some rows give": Case(
        ADD_ITEM_RETURNING,
        [item("c"), {**item("d"), "stock": 4}],  # the first row's keys count
    ),
    "insert many returning, a duplicate mid-batch": Case(
        ADD_ITEM_RETURNING, [item("c"), item("a"), item("d")]
    ),
    "insert many returning, a null mid-batch": Case(
        ADD_ITEM_RETURNING, [item("c"), {**item("d"), "kind": None}, item("e")]
    ),
    "insert many returning, a duplicate in a long statement": Case(
        ADD_ITEM_RETURNING, [item(f"n{n:02}") for n in range(40)] + [item("a")]
    ),
    "insert many returning, a parameter after the values": Case(
        ADD_ITEM_RETURNING_MORE,
        [{**item("c"), "b_more": 1}, {**item("d"), "b_more": 2}],  # the first row's counts
    ),
    "insert many on conflict returning, some existing": Case(
        ADD_ITEM_ONCE, [item("c"), item("a"), item("d"), item("c"), item("p")]
    ),
    "insert many on conflict returning, none new": Case(ADD_ITEM_ONCE, [item("a"), item("b")]),
    "upsert many returning": Case(
        ADD_STOCK_RETURNING,
        [{**item("a"), "stock": 5}, {**item("c"), "stock": 1}, {**item("a"), "stock": 1}],
    ),
    "delete": Case(REMOVE_KIND, {"kind": "book"}),
    "delete returning": Case(REMOVE_RETURNING, {"id": "b"}, "iter"),
    "select all": Case(BY_KIND, {"kind": "book"}),
    "select all, twice": Case(BY_KIND, {"kind": "book"}, "all then all"),
    "select iterated, then all": Case(BY_KIND, {"kind": "book"}, "iter then all"),
    "select first, then all": Case(BY_KIND, {"kind": "book"}, "first then all"),
    "select first": Case(BY_ID, {"id": "a"}, "first"),
    "select first, none": Case(BY_ID, {"id": "missing"}, "first"),
    "select one, none": Case(BY_ID, {"id": "missing"}, "one"),
    "select one or none, several": Case(BY_KIND, {"kind": "book"}, "one_or_none"),
    "select scalar": Case(COUNT_KIND, {"kind": "book"}, "scalar"),
    "select scalar_one": Case(BY_ID, {"id": "b"}, "scalar_one"),
    "select scalar_one_or_none, none": Case(BY_ID, {"id": "x"}, "scalar_one_or_none"),
    "select, a join": Case(WITH_NUMBER, {"unused": 1}),
    "a statement without rows asked for rows": Case(REMOVE_KIND, {"kind": "pen"}, "first"),
    "select in": Case(BY_IDS, {"ids": ["b", "a", "missing"]}),
    "select in, one value": Case(BY_IDS, {"ids": ["p"]}),
    "select in, no value": Case(BY_IDS, {"ids": []}),
    "select in, a value twice": Case(BY_IDS, {"ids": ["a", "a"]}),
    "select in, a tuple of values": Case(BY_IDS, {"ids": ("a", "b")}),
    "select in, a string (its characters)": Case(BY_IDS, {"ids": "ab"}),
    "select in, first": Case(BY_IDS, {"ids": ["a", "b"]}, "first"),
    "select in, datetimes": Case(AT_TIMES, {"whens": [LATER, WHEN]}),
    "select in a literal list": Case(PRICED_BOOKS_OR_PENS, {"price": 1200}),
    "select in a literal list, given by name": Case(
        PRICED_BOOKS_OR_PENS, {"price": 1200, "kind_1": ["pen"]}
    ),
    "select in, one parameter twice": Case(IDS_OR_KINDS, {"ids": ["a", "pen"]}),
    "select in beside a parameter named like its values": Case(
        IDS_BUT_KIND, {"ids": ["a", "b", "p"], "ids_1": "pen"}
    ),
    "update in": Case(RESTOCK_IDS, {"b_ids": ["a", "p", "missing"], "b_stock": 9}),
    "delete in, returning": Case(REMOVE_IDS_RETURNING, {"ids": ["a", "b"]}),
}


async def seed(db: Database) -> None:
    async with db.unit_of_work() as uow:
        await uow.execute(
            sa.insert(items), [item("a"), {**item("b"), "stock": 2}, item("p", "pen")]
        )
        await uow.execute(sa.insert(numbers), [{"name": "book"}, {"name": "one"}])
        await uow.commit()


@pytest_asyncio.fixture
async def databases(tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    """Two databases seeded alike: SQLAlchemy's and the prepared statements'."""
    async with (
        open_database(StorageConfig(data_dir=tmp_path / "sa"), "items", MIGRATIONS) as one,
        open_database(StorageConfig(data_dir=tmp_path / "prepared"), "items", MIGRATIONS) as two,
    ):
        for db in (one, two):
            await seed(db)
        yield one, two


def typed(row: Any) -> Any:
    """A row's names, values with their types, and mapping."""
    return (
        row._fields,
        [(type(value), value) for value in row],
        dict(row._mapping),
    )


def taken(result: Any, takes: str) -> Any:
    """The result as the caller takes it (``first then all``: two calls)."""
    seen = []
    for take in takes.split(" then "):
        try:
            if take == "all":
                seen.append([typed(row) for row in result.all()])
            elif take == "iter":
                seen.append([typed(row) for row in result])
            else:
                value = getattr(result, take)()
                seen.append(typed(value) if isinstance(value, sa.Row) else (type(value), value))
        except sa.exc.SQLAlchemyError as exc:
            seen.append(type(exc))
    return seen


def inserted_key(result: Any) -> Any:
    try:
        return tuple(result.inserted_primary_key)
    except sa.exc.InvalidRequestError as exc:
        return type(exc)


def what_it_gave(result: Any, takes: str) -> dict[str, Any]:
    """What a caller sees of a result: its rows as taken, rowcount, inserted key."""
    return {
        "rows": taken(result, takes),
        "rowcount": result.rowcount,
        "inserted": inserted_key(result),
    }


def what_it_raised(exc: sa.exc.DBAPIError) -> tuple[Any, ...]:
    """What a caller sees of an error: its classes, message, SQL and parameters."""
    return (type(exc), type(exc.orig), str(exc), exc.statement, exc.params)


def prepare(
    statement: Any, dialect: sa.Dialect, params: Any, schemas: Any = None
) -> PreparedStatement:
    """``statement`` prepared for ``params`` (for their number of values, if
    its parameters expand; for their number of rows, if it returns rows of
    an executemany), in ``schemas`` (a schema translate map)."""
    first = params[0] if isinstance(params, list) else params
    many = isinstance(params, list) and len(params) > 1
    keys = list(first)
    try:
        return PreparedStatement(statement, dialect, keys, many=many, schemas=schemas)
    except ManyRows:
        return PreparedStatement(
            statement, dialect, keys, many=many, rows=len(params), schemas=schemas
        )
    except Expanding as expanding:
        lengths = [
            len(first[key] if key in first else first.get(name, default))
            for key, name, default in expanding.parameters
        ]
        return PreparedStatement(
            statement, dialect, keys, many=many, lengths=lengths, schemas=schemas
        )


def run_prepared(connection: sa.Connection, statement: Any, params: Any) -> Any:
    prepared = prepare(statement, connection.dialect, params)
    return prepared.run(connection, prepared.bind_all(params), params)


def contents(conn: sa.Connection) -> Any:
    return [
        [typed(row) for row in conn.execute(sa.select(t).order_by(*t.primary_key))]
        for t in (items, numbers)
    ]


async def outcome(db: Database, case: Case, *, prepared: bool) -> Any:
    """What a caller sees of ``case`` run one way, and the tables after it:
    committed, or after an error both within the transaction (what the
    failed statement left) and once it rolled back."""
    seen: dict[str, Any] = {}
    async with db.unit_of_work() as uow:
        connection = uow.connection.sync_connection
        assert isinstance(connection, sa.Connection)
        try:
            if prepared:
                result = run_prepared(connection, case.statement, case.params)
                assert isinstance(result, PreparedResult)
            else:
                result = connection.execute(case.statement, case.params)
        except sa.exc.DBAPIError as exc:
            seen["error"] = what_it_raised(exc)
            seen["tables in the failed transaction"] = contents(connection)
        else:
            seen.update(what_it_gave(result, case.take))
            await uow.commit()
    return seen, await db.read(contents)


@pytest.mark.parametrize("name", list(CASES))
async def test_a_prepared_statement_gives_what_sqlalchemy_gives(
    databases: tuple[Database, Database], name: str
) -> None:
    through_sqlalchemy, through_prepared = databases
    case = CASES[name]
    expected = await outcome(through_sqlalchemy, case, prepared=False)
    assert await outcome(through_prepared, case, prepared=True) == expected


async def test_datetimes_and_json_come_back_as_they_went_in(
    databases: tuple[Database, Database],
) -> None:
    _, db = databases
    async with db.unit_of_work() as uow:
        connection = uow.connection.sync_connection
        assert isinstance(connection, sa.Connection)
        run_prepared(connection, ADD_ITEM, item("c"))
        row = run_prepared(connection, BY_ID, {"id": "c"}).one()
        assert row.created_at.replace(tzinfo=UTC) == WHEN  # naive UTC, as SQLAlchemy stores it
        assert row.tags == [{"name": "新刊", "rank": 1}]
        assert row._mapping[items.c.kind] == "book", "rows are keyed by column too"


PAIRS_IN = sa.select(items.c.id).where(
    sa.tuple_(items.c.id, items.c.kind).in_(sa.bindparam("pairs", expanding=True))
)


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        (sa.insert(attempts), {"id": "x"}),  # the Python-side default of ``count``
        (sa.text("SELECT 1"), {}),
        (sa.union(sa.select(items.c.id), sa.select(numbers.c.name)), {}),
        (PAIRS_IN, {"pairs": [("a", "book")]}),
        (
            sa.select(items.c.id).where(
                sa.literal_column("id").in_(sa.bindparam("ids", expanding=True))
            ),
            {"ids": ["a"]},
        ),
        (
            sa.select(items.c.id).where(
                items.c.id.in_(sa.bindparam("ids", expanding=True, literal_execute=True))
            ),
            {"ids": ["a"]},
        ),
        (RESTOCK_IDS, [{"b_ids": ["a"], "b_stock": 1}, {"b_ids": ["b"], "b_stock": 2}]),
        (
            sa.insert(numbers).from_select(
                ["name"], sa.select(items.c.id).where(items.c.id.in_(_IDS))
            ),
            {"ids": ["a"]},
        ),
    ],
    ids=[
        "python default",
        "text",
        "union",
        "expanding tuples",  # rendered by each tuple's length
        "expanding, untyped",  # rendered by whether the values are sequences
        "expanding, literal execute",
        "expanding, executemany",  # SQLAlchemy refuses it
        "expanding, in an insert",
    ],
)
async def test_what_sqlalchemy_does_more_for_is_not_prepared(statement: Any, params: Any) -> None:
    dialect = sqlite.dialect()
    keys = list(params[0] if isinstance(params, list) else params)
    for lengths in (None, [1]):
        with pytest.raises(NotPreparable) as raised:
            PreparedStatement(
                statement, dialect, keys, many=isinstance(params, list), lengths=lengths
            )
        assert not isinstance(raised.value, Expanding)


SET_STOCK_RETURNING = (
    sqlite.insert(items)
    .on_conflict_do_update(index_elements=["id"], set_={"stock": sa.bindparam("b_stock")})
    .returning(items.c.id)
)


@pytest.mark.parametrize(
    ("statement", "keys"),
    [
        (sa.insert(attempts).returning(attempts.c.count), ["id"]),
        (sa.insert(items).returning(items.c.id, sort_by_parameter_order=True), list(item("c"))),
        (SET_STOCK_RETURNING, [*item("c"), "b_stock"]),
        (RENAME_KIND.returning(items.c.id), ["b_kind", "b_new", "b_when"]),
    ],
    ids=[
        "python default",
        "sorted by parameter order",  # rows matched to parameters by a sentinel
        "bound parameters in ON CONFLICT's SET",  # a statement a row in SQLAlchemy
        "an update",  # SQLAlchemy refuses it on SQLite
    ],
)
async def test_what_sqlalchemy_does_more_for_in_executemany_returning_is_not_prepared(
    statement: Any, keys: list[str]
) -> None:
    dialect = sa.create_engine("sqlite://").dialect
    for rows in (None, 2):
        with pytest.raises(NotPreparable) as raised:
            PreparedStatement(statement, dialect, keys, many=True, rows=rows)
        assert not isinstance(raised.value, ManyRows)


async def test_executemany_returning_is_prepared_for_a_number_of_rows() -> None:
    dialect = sa.create_engine("sqlite://").dialect
    keys = list(item("c"))
    with pytest.raises(ManyRows):
        PreparedStatement(ADD_ITEM_ONCE, dialect, keys, many=True)
    three = PreparedStatement(ADD_ITEM_ONCE, dialect, keys, many=True, rows=3)
    assert "VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?), (?, ?, ?, ?, ?) ON CONFLICT" in three.sql
    values = three.bind_all([item("c"), item("d"), item("e")])
    assert [values[n] for n in (0, 5, 10)] == ["c", "d", "e"], "each row's values in turn"
    with pytest.raises(ValueError, match="another number of rows"):
        three.bind_all([item("c"), item("d")])
    with pytest.raises(NotPreparable, match="batches"):  # SQLAlchemy's page: 1000 rows
        PreparedStatement(ADD_ITEM_ONCE, dialect, keys, many=True, rows=1001)


async def test_an_expanding_statement_is_prepared_for_a_number_of_values() -> None:
    dialect = sa.create_engine("sqlite://").dialect
    with pytest.raises(Expanding) as raised:
        PreparedStatement(BY_IDS, dialect, ["ids"])
    assert [key for key, _, _ in raised.value.parameters] == ["ids"]
    three = PreparedStatement(BY_IDS, dialect, ["ids"], lengths=[3])
    assert "IN (?, ?, ?)" in three.sql
    assert three.bind({"ids": ["a", "b", "c"]}) == ("a", "b", "c")
    with pytest.raises(ValueError, match="another number of values"):
        three.bind({"ids": ["a", "b"]})
    both = PreparedStatement(IDS_OR_KINDS, dialect, ["ids"], lengths=[2])
    assert both.bind({"ids": ["a", "pen"]}) == ("a", "pen", "a", "pen"), "each use binds them"


async def test_a_unit_of_work_prepares_a_statement_run_again(
    databases: tuple[Database, Database],
) -> None:
    db, _ = databases
    async with db.unit_of_work() as uow:
        first = await uow.execute(BY_ID, {"id": "a"})
        again = await uow.execute(BY_ID, {"id": "a"})
        other_shape = await uow.execute(BY_ID, {"id": "a", "unused": 1})
        assert isinstance(first, sa.CursorResult), "first seen: maybe built for this call"
        assert isinstance(again, PreparedResult)
        assert isinstance(other_shape, PreparedResult)
        assert again.one() == first.one() == other_shape.one()
        with TracerProvider().get_tracer("test").start_as_current_span("request"):
            traced = await uow.execute(BY_ID, {"id": "a"})
        assert isinstance(traced, sa.CursorResult), "a recording span takes SQLAlchemy's way"
        built_per_call = [
            await uow.execute(sa.select(items.c.id).where(items.c.id == "a")) for _ in range(2)
        ]
        assert all(isinstance(r, sa.CursorResult) for r in built_per_call)


async def test_a_unit_of_work_runs_the_rest_through_sqlalchemy(
    databases: tuple[Database, Database],
) -> None:
    db, _ = databases
    add_attempt = sa.insert(attempts)
    async with db.unit_of_work() as uow:
        for n in range(2):
            result = await uow.execute(PAIRS_IN, {"pairs": [("a", "book"), ("b", "book")]})
            assert isinstance(result, sa.CursorResult)
            assert sorted(row.id for row in result) == ["a", "b"]
            await uow.execute(add_attempt, {"id": f"x{n}"})
        for _ in range(2):  # a value the bind processor refuses: SQLAlchemy's error
            with pytest.raises(sa.exc.StatementError):
                await uow.execute(AT_TIMES, {"whens": ["not a datetime"]})
        with pytest.raises(sa.exc.StatementError):  # a required parameter missing
            await uow.execute(ADD_ITEM, {"id": "c"})
        with pytest.raises(sa.exc.StatementError):
            await uow.execute(ADD_ITEM, {"id": "c"})
        rows = (await uow.execute(sa.select(attempts).order_by(attempts.c.id))).all()
        assert [tuple(row) for row in rows] == [("x0", 0), ("x1", 0)]


async def test_an_expanding_statement_is_prepared_per_number_of_values_up_to_a_bound(
    databases: tuple[Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepared_module, "MAX_EXPANSIONS", 2)
    db, _ = databases
    kinds = []
    async with db.unit_of_work() as uow:
        for ids in (["a"], ["b"], ["a", "b"], ["a", "b", "p"], ["p", "a", "b"], ["p"], []):
            result = await uow.execute(BY_IDS, {"ids": ids})
            assert [row.id for row in result.all()] == sorted(set(ids))
            kinds.append(type(result).__name__)
        for _ in range(2):  # a parameter missing: SQLAlchemy's error
            with pytest.raises(sa.exc.StatementError):
                await uow.execute(BY_IDS, {"other": ["a"]})
    assert kinds == [
        "CursorResult",  # seen once
        "PreparedResult",  # one value
        "PreparedResult",  # two: the bound reached
        "CursorResult",  # three: through SQLAlchemy, whatever the values
        "CursorResult",
        "PreparedResult",
        "CursorResult",  # none
    ]


async def test_executemany_returning_is_prepared_per_number_of_rows_up_to_a_bound(
    databases: tuple[Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepared_module, "MAX_ROW_COUNTS", 2)
    db, _ = databases
    kinds = []
    async with db.unit_of_work() as uow:
        for ids in (["c", "d"], ["a", "e"], ["f", "a", "g"], ["h", "i", "j", "k"], ["l", "m"]):
            result = await uow.execute(ADD_ITEM_ONCE, [item(i) for i in ids])
            assert [row.id for row in result.all()] == [i for i in ids if i != "a"]
            kinds.append(type(result).__name__)
        one_row = await uow.execute(ADD_ITEM_ONCE, [item("n")])
        assert isinstance(one_row, PreparedResult), "one row: not an executemany (prepared)"
        for _ in range(2):  # a parameter missing from a later row: SQLAlchemy's error
            with pytest.raises(sa.exc.StatementError):
                await uow.execute(ADD_ITEM_ONCE, [item("o"), {"id": "q"}])
        for _ in range(2):  # no rows at all: SQLAlchemy's to judge (one row of no values)
            with (
                pytest.raises(sa.exc.OperationalError, match="DEFAULT VALUES"),
                pytest.warns((sa.exc.SADeprecationWarning, sa.exc.SAWarning)),
            ):
                await uow.execute(ADD_ITEM_ONCE, [])
        with TracerProvider().get_tracer("test").start_as_current_span("request"):
            traced = await uow.execute(ADD_ITEM_ONCE, [item("r"), item("s")])
        assert isinstance(traced, sa.CursorResult), "a recording span takes SQLAlchemy's way"
        assert [row.id for row in traced] == ["r", "s"]
        add_attempts = sa.insert(attempts).returning(attempts.c.id, attempts.c.count)
        for n in range(2):  # a Python-side default: SQLAlchemy's
            defaulted = await uow.execute(add_attempts, [{"id": f"x{n}"}, {"id": f"y{n}"}])
            assert isinstance(defaulted, sa.CursorResult)
            assert [tuple(row) for row in defaulted] == [(f"x{n}", 0), (f"y{n}", 0)]
    assert kinds == [
        "CursorResult",  # seen once
        "PreparedResult",  # two rows
        "PreparedResult",  # three: the bound reached
        "CursorResult",  # four: through SQLAlchemy
        "PreparedResult",
    ]


async def test_an_error_leaves_the_transaction_to_roll_back(
    databases: tuple[Database, Database],
) -> None:
    db, _ = databases
    with pytest.raises(sa.exc.IntegrityError):
        async with db.unit_of_work() as uow:
            for n in range(2):
                await uow.execute(ADD_ITEM, item(f"n{n}"))
            await uow.execute(ADD_ITEM, item("a"))  # prepared by now: a duplicate
    async with db.unit_of_work() as uow:
        for n in range(2):
            await uow.execute(ADD_ITEM, item(f"m{n}"))
        await uow.commit()
    ids = await db.read(lambda conn: conn.execute(sa.select(items.c.id)).scalars().all())
    assert sorted(ids) == ["a", "b", "m0", "m1", "p"], "the failed unit left nothing"


async def test_a_statement_built_per_call_is_not_kept_alive(
    databases: tuple[Database, Database],
) -> None:
    """The cache holds statements weakly: one built per call and run twice
    (so prepared) goes when its caller drops it, with what was prepared.
    (SQLAlchemy's own compiled cache, bounded, keeps the one it ran.)"""
    db, _ = databases

    cache = PreparedStatements(sa.create_engine("sqlite://").dialect)  # pysqlite, as the writer

    async def run_twice() -> weakref.ref[Any]:
        built = sa.insert(numbers)  # per call, with parameters
        async with db.unit_of_work() as uow:
            connection = uow.connection.sync_connection
            assert isinstance(connection, sa.Connection)
            assert cache.execute(connection, built, {"name": "x"}) is None, "seen once"
            result = cache.execute(connection, built, {"name": "y"})
            assert result is not None
            assert tuple(result.inserted_primary_key) == (3,), "the key still comes back"
        return weakref.ref(built)

    built = await run_twice()
    gc.collect()
    assert built() is None


async def test_an_expanding_statement_built_per_call_is_not_kept_alive(
    databases: tuple[Database, Database],
) -> None:
    db, _ = databases
    cache = PreparedStatements(sa.create_engine("sqlite://").dialect)

    async def run_with_lengths() -> weakref.ref[Any]:
        built = sa.select(items.c.id).where(items.c.id.in_(sa.bindparam("ids", expanding=True)))
        async with db.unit_of_work() as uow:
            connection = uow.connection.sync_connection
            assert isinstance(connection, sa.Connection)
            assert cache.execute(connection, built, {"ids": ["a"]}) is None, "seen once"
            for ids in (["a"], ["a", "b"]):
                result = cache.execute(connection, built, {"ids": ids})
                assert result is not None
                assert [row.id for row in result] == ids
        return weakref.ref(built)

    built = await run_with_lengths()
    gc.collect()
    assert built() is None
