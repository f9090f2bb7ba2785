#!/usr/bin/env python
"""Hot checkout statements on the inline SQLite writer and reader, three ways.

Each write runs ``--statements`` times inside one write transaction (rolled
back after) on a WAL file, per way (an executemany: one run of a list of
rows, as ``claim_batch`` and ``add_order`` run theirs):

  sqlalchemy  ``Connection.execute`` on the writer's connection (a unit of
              work inside a recording span, and every run before this branch)
  prepared    ``PreparedStatements.execute``: compiled once, bound with
              SQLAlchemy's processors, run on the driver (a unit of work
              outside a recording span); through SQLAlchemy where it is not
              prepared, as a unit of work runs it
  sqlite3     the driver alone, its values bound before the clock starts
              (an executemany with RETURNING: SQLAlchemy's one statement of
              all the rows' VALUES)

Each bounded read runs ``--statements`` times on the inline reader, each in
its own BEGIN..ROLLBACK, the same three ways: ``InlineReader.run`` of
``conn.execute(...).all()`` (``Database.read``, and ``Database.rows`` inside
a recording span), ``InlineReader.read_prepared`` (``Database.rows`` and
``first`` outside one), and the driver alone.

Prints microseconds of CPU per statement for each (the median of
``--rounds`` rounds, the ways taking turns).

Usage: .venv/bin/python scripts/bench/prepared_statements.py [--statements 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ec_recommend.platform.events import inbox as inbox_module
from ec_recommend.platform.events import outbox as outbox_module
from ec_recommend.platform.storage.inline_reads import InlineReader
from ec_recommend.platform.storage.inline_writes import InlineWriter
from ec_recommend.platform.storage.prepared import PreparedStatement, PreparedStatements
from ec_recommend.services.order import ledger as order_ledger
from ec_recommend.services.order import store as order_store
from ec_recommend.services.order.tables import metadata as order_metadata
from ec_recommend.services.order.tables import order_items, payments
from ec_recommend.services.product import reservations as product_reservations
from ec_recommend.services.product import store as product_store
from ec_recommend.services.product.tables import metadata as product_metadata

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
NOW_TEXT = "2026-01-02 03:04:05.678901"  # as SQLAlchemy stores NOW on SQLite


def _ids() -> Iterator[str]:
    while True:
        yield str(uuid.uuid4())


def _order(ids: Iterator[str]) -> dict[str, Any]:
    order_id = next(ids)
    return {
        "id": order_id,
        "order_number": order_id[:32],
        "user_id": "buyer",
        "status": "PENDING_PAYMENT",
        "currency": "JPY",
        "total_amount": 1200,
        "stock_state": "RESERVED",
        "created_at": NOW,
        "updated_at": NOW,
    }


def _event(ids: Iterator[str]) -> dict[str, Any]:
    return {
        "id": next(ids),
        "event_type": "order.created",
        "body": '{"orderId": "x"}' * 20,
        "created_at": NOW,
        "sent_at": None,
        "attempts": 0,
    }


def _claim(ids: Iterator[str]) -> dict[str, Any]:
    return {"consumer": "bench", "event_id": next(ids), "event_type": "x", "handled_at": NOW}


def _claims(ids: Iterator[str]) -> list[dict[str, Any]]:
    return [_claim(ids) for _ in range(7)]  # an SQS batch's events, most of them


def _lines(ids: Iterator[str]) -> list[dict[str, Any]]:
    order_id = next(ids)
    line = {"order_id": order_id, "seller_id": "s", "name": "tea", "quantity": 1, "unit_price": 600}
    return [{**line, "line_no": n, "product_id": f"p{n}"} for n in range(3)]


def _status(_: Iterator[str]) -> dict[str, Any]:
    return {"b_order_id": "o1", "b_current": "PAID", "status": "PAID", "updated_at": NOW}


def _reserve(_: Iterator[str]) -> dict[str, Any]:
    return {"b_product_id": "p1", "b_quantity": 1, "b_now": NOW}


Params = dict[str, Any] | list[dict[str, Any]]

CASES: dict[str, tuple[Any, Callable[[Iterator[str]], Params]]] = {
    "INSERT order": (order_store._ADD_ORDER, _order),
    "INSERT outbox event": (outbox_module._ADD_EVENT, _event),
    "INSERT inbox claim .. RETURNING": (inbox_module._CLAIM("sqlite"), _claim),
    "INSERT inbox claim of 7 .. RETURNING": (inbox_module._CLAIM("sqlite"), _claims),
    "INSERT 3 order lines (executemany)": (order_store._ADD_LINES, _lines),
    "UPDATE order status .. RETURNING": (order_store._CHANGE_STATUS, _status),
    "UPDATE product stock (reserve)": (product_reservations._RESERVE_UNITS, _reserve),
}


# Reads by key (statement, parameters), as the checkout's services make them.
READS: dict[str, tuple[Any, dict[str, Any]]] = {
    "SELECT payment by id": (order_ledger._PAYMENT, {"payment_id": "pay1"}),
    "SELECT live payment (IN literal)": (order_ledger._LIVE_PAYMENT, {"order_id": "o1"}),
    "SELECT order + 2 lines (IN, 1 id)": (
        order_store._ORDERS_WITH_LINES,
        {"order_ids": ["o1"]},
    ),
    "SELECT products (IN, 3 ids)": (product_store._BY_IDS, {"product_ids": ["p1", "p2", "p3"]}),
}


def _seed(writer: InlineWriter) -> None:
    for metadata in (order_metadata, product_metadata, inbox_module.inbox_metadata):
        metadata.create_all(writer.engine)
    outbox_module.outbox_metadata.create_all(writer.engine)
    conn = writer.begin().sync_connection
    conn.execute(order_store._ADD_ORDER, {**_order(_ids()), "id": "o1", "status": "PAID"})
    conn.exec_driver_sql(
        "INSERT INTO products (id, seller_id, name, description, currency, base_price,"
        " available, status, images, created_at, updated_at)"
        " VALUES ('p1', 's', 'n', 'd', 'JPY', 100, 1000000000, 'active', '[]', ?, ?)",
        (NOW_TEXT, NOW_TEXT),
    )
    for product_id in ("p2", "p3"):
        conn.exec_driver_sql(
            "INSERT INTO products (id, seller_id, name, description, currency, base_price,"
            " available, status, images, created_at, updated_at) SELECT ?, seller_id, name,"
            " description, currency, base_price, available, status, images, created_at,"
            " updated_at FROM products WHERE id = 'p1'",
            (product_id,),
        )
    line = {"order_id": "o1", "seller_id": "s", "name": "tea", "quantity": 1, "unit_price": 600}
    conn.execute(
        sa.insert(order_items), [{**line, "line_no": n, "product_id": f"p{n}"} for n in (1, 2)]
    )
    conn.execute(
        sa.insert(payments),
        {
            "id": "pay1",
            "order_id": "o1",
            "status": "SUCCEEDED",
            "amount": 1200,
            "currency": "JPY",
            "created_at": NOW,
            "updated_at": NOW,
        },
    )
    conn.commit()


def _cpu(run: Callable[[], None]) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--statements", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n = args.statements
    with tempfile.TemporaryDirectory() as tmp:
        writer = InlineWriter(Path(tmp) / "bench.db")
        _seed(writer)
        dialect = writer.engine.dialect
        print(f"{'statement':36} {'sqlalchemy':>11} {'prepared':>9} {'sqlite3':>8}  (us CPU)")
        for name, (statement, make) in CASES.items():
            ids = _ids()
            times: dict[str, list[float]] = {"sqlalchemy": [], "prepared": [], "sqlite3": []}
            for _ in range(args.rounds):
                for way in times:
                    params = [make(ids) for _ in range(n + 1)]
                    conn = writer.begin().sync_connection
                    run = _way(way, conn, statement, params, dialect)
                    times[way].append(_cpu(run) / n)
                    conn.rollback()
            print(
                f"{name:36} "
                + " ".join(
                    f"{statistics.median(t) * 1e6:{w}.1f}"
                    for t, w in zip(times.values(), (11, 9, 8), strict=True)
                )
            )
        writer.close()
        reader = InlineReader(Path(tmp) / "bench.db")
        for name, (statement, params) in READS.items():
            times = {"sqlalchemy": [], "prepared": [], "sqlite3": []}
            for _ in range(args.rounds):
                for way in times:
                    times[way].append(_cpu(_read_way(way, reader, statement, params, n)) / n)
            print(
                f"{name:36} "
                + " ".join(
                    f"{statistics.median(t) * 1e6:{w}.1f}"
                    for t, w in zip(times.values(), (11, 9, 8), strict=True)
                )
            )
        reader.close()


def _way(
    way: str, conn: sa.Connection, statement: Any, params: list[Params], dialect: Any
) -> Callable[[], None]:
    """The timed loop of ``way`` over ``params[1:]`` (``params[0]`` warms it up)."""
    warm, params = params[0], params[1:]
    rows = bool(getattr(statement, "_returning", ()))
    if way == "sqlalchemy":
        conn.execute(statement, warm)  # compiled and cached

        def run() -> None:
            for each in params:
                result = conn.execute(statement, each)
                if rows:
                    result.all()

        return run
    if way == "prepared":
        prepared = PreparedStatements(dialect)
        prepared.execute(conn, statement, warm)  # seen once: the next runs are prepared

        def run() -> None:
            for each in params:
                result = prepared.execute(conn, statement, each) or conn.execute(statement, each)
                if rows:
                    result.all()

        return run
    driver: Any = conn.connection.driver_connection
    if isinstance(warm, list):
        return _bare_executemany(driver, statement, params, dialect)
    one = PreparedStatement(statement, dialect, list(warm))
    values = [one.bind(each) for each in params]

    def run() -> None:
        for each in values:
            cursor = driver.execute(one.sql, each)
            cursor.fetchall()
            cursor.close()

    return run


def _bare_executemany(
    driver: Any, statement: Any, params: list[Any], dialect: Any
) -> Callable[[], None]:
    """The driver alone for an executemany: ``executemany`` of the one-row SQL,
    or with RETURNING the statement of all the rows' VALUES that SQLAlchemy
    renders (its own batching, called here directly)."""
    keys = list(params[0][0])
    compiled: Any = statement.compile(
        dialect=dialect, column_keys=sorted(keys), for_executemany=True
    )
    one = PreparedStatement(statement, dialect, keys)  # a row's values, bound as SQLAlchemy does
    if not compiled.effective_returning:
        sql = compiled.string
        many = [[one.bind(row) for row in each] for each in params]

        def run_many() -> None:
            for each in many:
                driver.executemany(sql, each).close()

        return run_many
    batches = []
    for each in params:
        rows = [one.bind(row) for row in each]
        (batch,) = compiled._deliver_insertmanyvalues_batches(
            compiled.string, rows, [{} for _ in rows], None, 1000, False, None
        )
        batches.append((batch.replaced_statement, batch.replaced_parameters))

    def run() -> None:
        for sql, values in batches:
            cursor = driver.execute(sql, values)
            cursor.fetchall()
            cursor.close()

    return run


def _read_way(
    way: str, reader: InlineReader, statement: Any, params: dict[str, Any], n: int
) -> Callable[[], None]:
    """The timed loop of ``way``: ``n`` reads of ``statement``, each in its own
    read transaction (two untimed reads warm it up)."""
    if way == "sqlalchemy":

        def read(conn: sa.Connection) -> Any:
            return conn.execute(statement, params).all()

        reader.run(read)

        def run() -> None:
            for _ in range(n):
                reader.run(read)

        return run
    if way == "prepared":

        def take(result: Any) -> Any:
            return result.all()

        for _ in range(2):  # seen once, then prepared
            reader.read_prepared(statement, params, take)

        def run() -> None:
            for _ in range(n):
                reader.read_prepared(statement, params, take)

        return run
    one = _prepared_for(statement, reader.engine.dialect, params)
    values = one.bind(params)
    driver: Any = reader.run(lambda conn: conn.connection.driver_connection)

    def run() -> None:
        for _ in range(n):
            driver.execute("BEGIN")
            cursor = driver.execute(one.sql, values)
            cursor.fetchall()
            cursor.close()
            driver.rollback()

    return run


def _prepared_for(statement: Any, dialect: Any, params: dict[str, Any]) -> PreparedStatement:
    """``statement`` prepared for ``params`` (their number of values, if it expands)."""
    cache = PreparedStatements(dialect)
    for _ in range(2):
        bound = cache.bound(statement, params)
    assert bound is not None, "preparable"
    return bound[0]


if __name__ == "__main__":
    main()
