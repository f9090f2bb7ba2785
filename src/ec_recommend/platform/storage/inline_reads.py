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
the driver (``prepared.PreparedStatement``: its SQL, its parameters' order,
its processors and rows, taken from SQLAlchemy so values come back as they
would through it), run on the driver's connection in the same BEGIN..ROLLBACK.
That work (execution context, result metadata, transaction objects and
events) costs about five times the read itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Select, create_engine, event
from sqlalchemy.pool import StaticPool

from ec_recommend.platform.storage.prepared import NotPreparable, PreparedStatement

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
        self._prepared: dict[Select[Any], PreparedStatement | None] = {}

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
        on the driver's connection, untraced (no engine events fire) when it
        can be prepared (``prepared``)."""
        try:
            prepared = self._prepared[statement]
        except KeyError:
            try:
                prepared = PreparedStatement(statement, self.engine.dialect)
            except NotPreparable:
                prepared = None
            self._prepared[statement] = prepared
        try:
            values = None if prepared is None else prepared.bind(params)
        except Exception:
            values = None  # a missing parameter, say: SQLAlchemy raises its error
        if prepared is None or values is None:
            return self.run(lambda conn: conn.execute(statement, params).first())
        # Between runs SQLAlchemy's connection holds no transaction (``run``
        # ends each), so the driver's connection is ours until we return.
        driver = self._connected().connection.driver_connection
        assert driver is not None
        try:
            driver.execute("BEGIN")
            cursor = driver.execute(prepared.sql, values)
            try:
                row = cursor.fetchone()
            finally:
                cursor.close()
        except sqlite3.Error as exc:
            raise prepared.error(exc, values) from exc  # as SQLAlchemy raises it
        finally:
            driver.rollback()  # ends the snapshot, as ``run`` does
        return None if row is None else prepared.row(row)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.engine.dispose()


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
