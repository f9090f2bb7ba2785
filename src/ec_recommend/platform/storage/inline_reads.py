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

Reads by statement (``read_prepared``: ``Database.first`` and ``rows``)
skip SQLAlchemy's per-execution work too: a statement built once is
compiled once for the driver (``prepared``: its SQL, its parameters' order,
its processors and rows, taken from SQLAlchemy so values come back as they
would through it), and runs on the driver's connection in the same
BEGIN..ROLLBACK. That work (execution context, result metadata, transaction
objects and events) costs several times the read itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Executable

from ec_recommend.platform.storage.prepared import PreparedStatement, PreparedStatements
from ec_recommend.platform.storage.results import PreparedResult, StatementResult

T = TypeVar("T")

# A reader waits this long (milliseconds) for SQLite's rare exclusive moments
# (WAL recovery, the last connection's checkpoint); it blocks the loop meanwhile.
_READ_BUSY_TIMEOUT_MS = 2000

# Page cache of every connection to a service's file, in KiB (SQLite's
# default is 2,000). In WAL mode a read transaction that finds the file
# changed since its last one empties its connection's cache, so under load a
# reader's cache holds about one read's pages; the writer's, kept across its
# own commits, holds the hot index pages, which a few hundred KiB cover (the
# checkout bench: the same CPU per order at 256 KiB as at 2,000). At the
# default the caches grew ``up`` by ~16 MB in a minute of checkout.
CACHE_KIB = 256


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
        self._prepared = PreparedStatements(self.engine.dialect)

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

    def read_prepared(
        self, statement: Executable, params: Any, take: Callable[[StatementResult], T]
    ) -> T:
        """``take`` of ``statement``'s result: what ``run`` gives for
        ``take(conn.execute(statement, params))``, prepared (``prepared``:
        from its second run, on the driver's connection, untraced, as no
        engine event fires) when it can be."""
        bound = self._prepared.bound(statement, params)
        if bound is None:
            return self.run(lambda conn: take(conn.execute(statement, params)))
        return take(self.run_prepared(*bound))

    def run_prepared(self, prepared: PreparedStatement, values: Any) -> PreparedResult:
        """``prepared`` run with bound ``values`` in one read transaction on the
        driver's connection, its rows fetched before the transaction ends."""
        # Between runs SQLAlchemy's connection holds no transaction (``run``
        # ends each), so the driver's connection is ours until we return.
        connection = self._connected()
        driver = connection.connection.driver_connection
        assert driver is not None
        try:
            driver.execute("BEGIN")
        except sqlite3.Error as exc:
            raise prepared.error(exc, values) from exc  # as SQLAlchemy raises it
        try:
            return prepared.run(connection, values)
        finally:
            driver.rollback()  # ends the snapshot, as ``run`` does

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
        cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        # On the driver's connection: a statement through SQLAlchemy costs
        # more than the BEGIN itself, which takes no lock and cannot fail busy.
        conn.connection.driver_connection.execute("BEGIN")
