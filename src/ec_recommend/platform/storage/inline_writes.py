"""SQLite write transactions on the event loop's own thread.

Through aiosqlite every statement of a write transaction hops to the driver's
thread and back several times (cursor, execute, fetch, close), and the hops
dominate: a 5-statement transaction cost ~1.1 ms of CPU against 0.07 ms with
sqlite3 directly, and the write lock was held for the whole round trip. A
write to a WAL database in the page cache takes microseconds, so a unit of
work runs its statements synchronously on one dedicated connection instead,
as ``inline_reads`` does for reads.

Nothing may make the loop wait on SQLite's own locks, which only another
connection can free:

- Writers of this process queue on one asyncio lock per file (``write_lock``),
  shared by every ``Database`` opened on it, so the writer connection only
  ever asks SQLite for its lock when no writer of ours holds it.
- Another process may hold it (a second ``serve``, ``events replay``): the
  writer's busy timeout is short, and BEGIN IMMEDIATE is retried with
  asynchronous backoff by the caller (``Database.unit_of_work``).
- Checkpoints copy the WAL into the database file and fsync; the writer never
  runs them on commit (``wal_autocheckpoint=0``): ``Database`` asks for a
  passive one on its aiosqlite engine, off the loop, every few hundred commits.

Statements built once run prepared on the driver's connection, inside the
transaction SQLAlchemy's connection began (``prepared``); commit and rollback
stay SQLAlchemy's.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from opentelemetry import trace
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Executable

from ec_recommend.platform.storage.inline_reads import CACHE_KIB
from ec_recommend.platform.storage.prepared import PreparedStatements
from ec_recommend.platform.storage.results import PreparedResult

T = TypeVar("T")
P = ParamSpec("P")

# How long (milliseconds) the writer lets SQLite wait, blocking the loop, for
# a lock another connection holds; past it BEGIN fails and is retried later.
WRITE_BUSY_TIMEOUT_MS = 5

_write_locks: weakref.WeakValueDictionary[tuple[str, int], asyncio.Lock] = (
    weakref.WeakValueDictionary()
)


def write_lock(path: Path) -> asyncio.Lock:
    """The one queue of this process's (and event loop's) writers to ``path``.

    Two ``Database`` objects on one file (a consumer opening a service's
    database, the CLI, tests) must share it: with a lock each, the second's
    BEGIN would find the file locked by a first one that cannot run while
    the loop waits in SQLite's busy handler.
    """
    key = (str(path.resolve()), id(asyncio.get_running_loop()))
    lock = _write_locks.get(key)
    if lock is None:
        lock = _write_locks[key] = asyncio.Lock()
    return lock


def is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (any extended code): another connection's lock."""
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    code = getattr(orig, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class InlineConnection:
    """The writer's connection, awaited like an ``AsyncConnection``.

    Code written against ``uow.connection`` (``run_sync``, ``exec_driver_sql``,
    ``dialect``) keeps working; no call yields to the loop.
    """

    def __init__(self, connection: Connection, prepared: PreparedStatements) -> None:
        self.sync_connection = connection
        self._prepared = prepared

    @property
    def dialect(self) -> Dialect:
        return self.sync_connection.dialect

    async def execute(
        self, statement: Executable, parameters: Any = None
    ) -> CursorResult[Any] | PreparedResult:
        """``Connection.execute``; prepared (``prepared``) when no span records
        the statement (its engine events make the span) and a transaction is
        open (outside one, SQLAlchemy's autobegin issues BEGIN IMMEDIATE)."""
        connection = self.sync_connection
        if connection.in_transaction() and not trace.get_current_span().is_recording():
            result = self._prepared.execute(connection, statement, parameters)
            if result is not None:
                return result
        return connection.execute(statement, parameters)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> CursorResult[Any]:
        return self.sync_connection.exec_driver_sql(statement, parameters)

    async def run_sync(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return fn(self.sync_connection, *args, **kwargs)

    def in_transaction(self) -> bool:
        return self.sync_connection.in_transaction()

    async def commit(self) -> None:
        self.sync_connection.commit()

    async def rollback(self) -> None:
        self.sync_connection.rollback()


class InlineWriter:
    """One synchronous write connection to a SQLite file, used from the loop thread."""

    def __init__(self, path: Path) -> None:
        # StaticPool: the one connection, kept open; the write lock keeps its
        # transactions apart.
        self.engine: Engine = create_engine(
            f"sqlite:///{path}",
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},  # closed from dispose()
        )
        _tune_write_connection(self.engine)
        self._connection: Connection | None = None
        self._prepared = PreparedStatements(self.engine.dialect)

    def begin(self) -> InlineConnection:
        """The connection inside a new write transaction (BEGIN IMMEDIATE).

        Raises the driver's SQLITE_BUSY error (``is_busy``) within
        ``WRITE_BUSY_TIMEOUT_MS`` when another process writes.
        """
        connection = self._connection
        if connection is None:
            connection = self._connection = self.engine.connect()
        try:
            connection.begin()
        except BaseException:
            connection.rollback()  # forget the transaction that never started
            raise
        return InlineConnection(connection, self._prepared)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.engine.dispose()


def _tune_write_connection(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are ours: BEGIN below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={WRITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # Database checkpoints off the loop
        cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        # Take the write lock at BEGIN so a transaction never has to upgrade.
        # On the driver's connection: a statement through SQLAlchemy costs
        # more than the BEGIN itself.
        try:
            conn.connection.driver_connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise sa_exc.OperationalError("BEGIN IMMEDIATE", None, exc) from exc
