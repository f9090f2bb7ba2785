"""Short SQLite reads on the event loop's own thread.

Through aiosqlite, one primary-key read costs about nine hops to the driver's
thread and back (cursor, BEGIN, SELECT, fetch, close, ROLLBACK), each a
context switch on a busy machine, plus SQLAlchemy's greenlet bridging. The
read itself, from a WAL database in the page cache, takes microseconds. So
bounded reads (by key) run synchronously on a dedicated connection instead:
one BEGIN..ROLLBACK snapshot per read, as ``Database.reading()`` gives, with
no thread hop at all. In WAL mode a reader never waits for the writer.

Only bounded work belongs here: a scan would stall every other call on the
loop while it runs. Those stay on ``Database.reading()``.

The hottest reads (a product by id, on every uncached product page) skip
SQLAlchemy's per-execution work too (``first``): a SELECT compiled once for
the driver (``PreparedRead``: its SQL, its parameters' order, its columns'
result processors, taken from SQLAlchemy so values come back as they would
through it), run on the driver's connection in the same BEGIN..ROLLBACK. That
work (execution context, result metadata, transaction objects and events)
costs about five times the read itself.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Dialect, Engine, Select, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import StaticPool

T = TypeVar("T")

# A reader waits this long (milliseconds) for SQLite's rare exclusive moments
# (WAL recovery, the last connection's checkpoint); it blocks the loop meanwhile.
_READ_BUSY_TIMEOUT_MS = 2000


class InlineReader:
    """One synchronous read connection to a SQLite file, used from the loop thread."""

    def __init__(self, path: Path) -> None:
        # StaticPool: the one connection, kept open; reads never overlap because
        # each runs to completion without yielding to the loop.
        self.engine: Engine = create_engine(
            f"sqlite:///{path}",
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},  # closed from dispose()
        )
        _tune_read_connection(self.engine)
        self._connection: Connection | None = None
        self._prepared: dict[Select[Any], PreparedRead] = {}

    def _connected(self) -> Connection:
        connection = self._connection
        if connection is None:
            connection = self._connection = self.engine.connect()
        return connection

    def run(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` inside one read transaction, ended before returning."""
        connection = self._connected()
        try:
            return work(connection)
        finally:
            # Ends the snapshot: a held read transaction would hide later
            # writes from this connection and keep the WAL from checkpointing.
            connection.rollback()

    def first(self, statement: Select[Any], params: Mapping[str, Any]) -> Any | None:
        """The first row of ``statement`` (a row with its columns as attributes),
        or None: what ``run`` gives for ``conn.execute(statement, params).first()``,
        on the driver's connection, untraced (no engine events fire)."""
        prepared = self._prepared.get(statement)
        if prepared is None:
            prepared = self._prepared[statement] = PreparedRead(statement, self.engine.dialect)
        # Between runs SQLAlchemy's connection holds no transaction (``run``
        # ends each), so the driver's connection is ours until we return.
        driver = self._connected().connection.driver_connection
        assert driver is not None
        values = prepared.bind(params)
        try:
            driver.execute("BEGIN")
            cursor = driver.execute(prepared.sql, values)
            try:
                row = cursor.fetchone()
            finally:
                cursor.close()
        except sqlite3.Error as exc:
            # as SQLAlchemy raises it, so callers see the same errors either way
            raise sa_exc.DBAPIError.instance(prepared.sql, values, exc, sqlite3.Error) from exc
        finally:
            driver.rollback()  # ends the snapshot, as ``run`` does
        return None if row is None else prepared.row(row)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.engine.dispose()


class PreparedRead:
    """A SELECT compiled once for the driver: its SQL, the order of its
    parameters, and its columns' result processors (SQLAlchemy's own, so a
    row's values are what a SQLAlchemy row of the same statement holds)."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        names = compiled.positiontup
        if names is None or any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("a prepared read takes positional, non-expanding parameters")
        self.sql = compiled.string
        self._names = tuple(names)
        binds = [compiled.binds[name] for name in self._names]
        # a literal in the statement is a parameter with a value of its own
        self._defaults = {
            name: bind.value
            for name, bind in zip(self._names, binds, strict=True)
            if not bind.required
        }
        self._bind_processors = tuple(
            bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds
        )
        columns = list(statement.selected_columns)
        fields = [column.key or "" for column in columns]
        if not all(fields):
            raise ValueError("a prepared read names every column it selects")
        self._row_type: Any = namedtuple("Row", fields)  # type: ignore[misc]
        self._result_processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )

    def bind(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        defaults = self._defaults
        values = [params[name] if name in params else defaults[name] for name in self._names]
        for i, process in enumerate(self._bind_processors):
            if process is not None:
                values[i] = process(values[i])
        return tuple(values)

    def row(self, values: tuple[Any, ...]) -> Any:
        return self._row_type._make(
            value if process is None else process(value)
            for value, process in zip(values, self._result_processors, strict=True)
        )


def _tune_read_connection(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are ours: BEGIN below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={_READ_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        # On the driver's connection: a statement through SQLAlchemy costs
        # more than the BEGIN itself, which takes no lock and cannot fail busy.
        conn.connection.driver_connection.execute("BEGIN")
