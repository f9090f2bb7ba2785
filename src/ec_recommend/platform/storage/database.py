"""A service's database: engine, schema, migrations, units of work.

One code path, two engines. SQLite (aiosqlite, WAL) is the embedded default:
one file per service under the data directory. PostgreSQL (asyncpg) is chosen
by URL: one schema per service, mapped onto unqualified table names with
``schema_translate_map`` so the service code never names its schema, on the
one engine (and pool) the process shares per server (``engines``). A
connection that cannot be had is ``errors.Unavailable`` (``availability``).

SQLite allows one writer at a time; rather than let concurrent writers fail
with "database is locked", write units of work queue on an asyncio lock (one
per file, ``inline_writes.write_lock``) and run on the loop's thread
(``inline_writes``); reads by key do too (``inline_reads``). Migrations and
``reading()`` (scans) stay on aiosqlite's thread.

On both, a statement built once and run again (a module constant with
``bindparam``) runs prepared (``prepared``) from its second run, when no
span records it: a unit of work's statements and the bounded reads
(``first``, ``rows``, ``fetch``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar, overload

from opentelemetry import trace
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Row,
    Select,
    Table,
    event,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable
from sqlalchemy.util import greenlet_spawn

from ec_recommend.config import StorageConfig
from ec_recommend.platform import errors
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.retry import Backoff, RetriesExhausted, with_retry
from ec_recommend.platform.storage.availability import CheckoutFailed, obtained, open_connection
from ec_recommend.platform.storage.engines import SERVICES_POOL, shared_engine
from ec_recommend.platform.storage.inline_reads import CACHE_KIB, InlineReader
from ec_recommend.platform.storage.inline_writes import (
    InlineConnection,
    InlineWriter,
    is_busy,
    write_lock,
)
from ec_recommend.platform.storage.leased import close_settled, commit_on_adapter, run_leased
from ec_recommend.platform.storage.prepared import PreparedStatements
from ec_recommend.platform.storage.results import StatementResult
from ec_recommend.platform.telemetry.database import instrument_engine

log = logging.getLogger(__name__)

T = TypeVar("T")

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# While another process writes the file, look again soon: its transactions
# are short, and the loop must not wait in SQLite's busy handler meanwhile.
_WRITER_BUSY_BACKOFF = Backoff(initial_delay=0.002, max_delay=0.1, multiplier=2.0, jitter=0.5)

# A passive checkpoint (off the loop) after this many inline commits: about
# as often as SQLite's default autocheckpoint (1,000 pages) for small writes.
CHECKPOINT_EVERY = 250


@dataclass(frozen=True)
class Migration:
    """One schema step; ``version`` grows by one per step."""

    version: int
    apply: Callable[[AsyncConnection], Awaitable[None]]


class AtCommit(Protocol):
    """Writes a unit of work gathers and makes just before it commits."""

    def __init__(self, uow: UnitOfWork) -> None: ...

    async def flush(self) -> None: ...


AtCommitT = TypeVar("AtCommitT", bound=AtCommit)


class UnitOfWork:
    """One transaction. It rolls back unless ``commit()`` was called.

    ``prepared``: the statements of an ``AsyncConnection`` run prepared (on
    SQLite the inline connection prepares its own)."""

    def __init__(
        self,
        connection: AsyncConnection | InlineConnection,
        prepared: PreparedStatements | None = None,
    ) -> None:
        self.connection = connection
        self.committed = False
        self._prepared = prepared
        self._at_commit: dict[type[AtCommit], AtCommit] = {}

    def at_commit(self, kind: type[AtCommitT]) -> AtCommitT:
        """This unit of work's one ``kind``, made on first use; ``commit()``
        awaits its ``flush()`` first (in the order first used, a kind first
        used by another's flush after that one)."""
        made = self._at_commit.get(kind)
        if made is None:
            made = self._at_commit[kind] = kind(self)
        return made  # type: ignore[return-value]

    @property
    def dialect(self) -> str:
        """The engine's dialect name (``sqlite``, ``postgresql``)."""
        return self.connection.dialect.name

    async def execute(self, statement: Executable, params: Any = None) -> StatementResult:
        prepared = self._prepared
        connection = self.connection
        if (
            prepared is not None
            and isinstance(connection, AsyncConnection)
            and connection.in_transaction()
            and not trace.get_current_span().is_recording()
        ):
            return await _execute_async(connection, prepared, statement, params)
        return await self.connection.execute(statement, params)

    async def commit(self) -> None:
        # A flush may gather for a kind not used before (a batch's new events
        # adding to counters): that one flushes after it, each kind once.
        while self._at_commit:
            kind = next(iter(self._at_commit))
            await self._at_commit[kind].flush()
            del self._at_commit[kind]
        connection = self.connection
        if (
            self._prepared is not None
            and isinstance(connection, AsyncConnection)
            and not trace.get_current_span().is_recording()
        ):
            await commit_on_adapter(connection)
        else:
            await connection.commit()
        self.committed = True


class Database:
    def __init__(
        self,
        engine: AsyncEngine,
        service: str,
        schema: str | None,
        inline_reader: InlineReader | None = None,
        *,
        connect_wait: float = 5.0,
        inline_writer: InlineWriter | None = None,
        path: Path | None = None,
    ) -> None:
        self.engine = engine
        self.service = service
        self.schema = schema
        self.dialect = engine.dialect.name
        self._write_lock: asyncio.Lock | None = None
        if self.dialect == "sqlite":
            self._write_lock = write_lock(path) if path is not None else asyncio.Lock()
        self._inline_reader = inline_reader
        self._inline_writer = inline_writer
        self._path = path
        self._connect_wait = connect_wait  # the pool's timeout
        # On PostgreSQL a read by key, and a write of one statement, run
        # outside an explicit transaction: the server makes the statement a
        # transaction of its own. A read sees what was committed when it
        # started, as in a READ COMMITTED transaction; a write is as atomic
        # as in one. Either way without the BEGIN and COMMIT (or ROLLBACK)
        # round trips, two of a one-statement transaction's three.
        self._autocommit = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else engine
        )
        # SQLite prepares on its inline connections; a server's statements
        # run prepared on the async engine's connections, in the schema they
        # are translated to.
        self._prepared: PreparedStatements | None = None
        if self.dialect == "postgresql":
            schemas = engine.get_execution_options().get("schema_translate_map")
            self._prepared = PreparedStatements(engine.dialect, schemas)
        self._commits = 0
        self._checkpoint: asyncio.Task[None] | None = None

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @property
    def engines(self) -> list[Engine]:
        """Every engine this database runs statements on (to observe them all)."""
        inline = [e for e in (self._inline_writer, self._inline_reader) if e is not None]
        return [self.engine.sync_engine, *(e.engine for e in inline)]

    @asynccontextmanager
    async def _connect(self, engine: AsyncEngine | None = None) -> AsyncIterator[AsyncConnection]:
        """A pooled connection; none to be had is ``Unavailable``, never a bug."""
        conn = await open_connection(engine or self.engine, self.service, self._connect_wait)
        try:
            yield conn
        finally:
            await conn.close()

    @asynccontextmanager
    async def _begun(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection with SQLAlchemy's transaction begun, for a unit
        of work on PostgreSQL: begun here, not by the first statement, since a
        prepared one does not autobegin it (BEGIN itself goes to the server
        with the first statement). The checkout and the begin run in one
        greenlet (each greenlet entered costs ~13 µs of CPU, and a unit of work
        went through four)."""
        sync_engine = self.engine.sync_engine

        def begun() -> Connection:
            try:
                conn = sync_engine.connect()
            except Exception as exc:
                raise CheckoutFailed(exc) from exc
            conn.begin()  # bookkeeping only: asyncpg's adapter begins lazily
            return conn

        async def attempt() -> AsyncConnection:
            return AsyncConnection(self.engine, await greenlet_spawn(begun))

        conn = await obtained(attempt, self.service, self._connect_wait)
        try:
            yield conn
        finally:
            await close_settled(conn)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """A write transaction; nothing sticks unless the block commits."""
        if self._inline_writer is None:
            async with self._async_unit_of_work() as uow:
                yield uow
            return
        async with self._write_lock:  # type: ignore[union-attr]  # SQLite has one
            conn = await self._begin_inline(self._inline_writer)
            uow = UnitOfWork(conn)
            try:
                yield uow
            finally:
                if not uow.committed and conn.in_transaction():
                    await conn.rollback()
        if uow.committed:
            self._committed()

    async def _begin_inline(self, writer: InlineWriter) -> InlineConnection:
        """BEGIN IMMEDIATE on the writer, retried while another process writes
        for as long as a pool would wait; then ``Unavailable``, like a pool."""

        async def attempt() -> InlineConnection:
            return writer.begin()

        loop = asyncio.get_running_loop()
        try:
            return await with_retry(
                attempt,
                is_retryable=is_busy,
                backoff=_WRITER_BUSY_BACKOFF,
                max_attempts=None,
                deadline=loop.time() + self._connect_wait,
            )
        except RetriesExhausted as exhausted:
            log.warning("%s: the database stays locked by another writer", self.service)
            raise errors.Unavailable(
                f"the {self.service} database is locked by another writer; retry later",
                reason="database_busy",
                retry_after="1",
            ) from exhausted.last

    def _committed(self) -> None:
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY or self._path is None:
            return
        if self._checkpoint is None or self._checkpoint.done():
            self._checkpoint = asyncio.create_task(
                asyncio.to_thread(_checkpoint, self._path), name=f"checkpoint-{self.service}"
            )

    async def close(self) -> None:
        """Wait for a checkpoint under way (the engines are the caller's)."""
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)

    @asynccontextmanager
    async def _async_unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """A write transaction on the async engine (PostgreSQL; SQLite's migrations)."""
        if self._write_lock is None:
            async with self._begun() as conn:
                uow = UnitOfWork(conn, self._prepared)
                try:
                    yield uow
                finally:
                    if not uow.committed and conn.in_transaction():
                        await conn.rollback()
            return
        async with self._write_lock, self._connect() as conn:
            uow = UnitOfWork(conn)
            # Take the write lock at BEGIN so a reader never has to upgrade.
            conn.sync_connection.info["ec_begin"] = "BEGIN IMMEDIATE"  # type: ignore[union-attr]
            await conn.begin()
            try:
                yield uow
            finally:
                if not uow.committed and conn.in_transaction():
                    await conn.rollback()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads; never blocks behind writers."""
        async with self._connect() as conn:
            yield conn

    async def read(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)``: a short, bounded read (by key), one statement.

        On SQLite it runs on the event loop's thread (see ``inline_reads``):
        ``work`` must not scan. On PostgreSQL it runs on a pooled connection,
        outside a transaction: several statements would each see their own
        snapshot (use ``reading()`` or a unit of work for those).
        """
        if self._inline_reader is not None:
            return self._inline_reader.run(work)
        return await self._autocommitted(work)

    async def _autocommitted(self, work: Callable[[Connection], T]) -> T:
        async with self._connect(self._autocommit) as conn:
            return await conn.run_sync(work)

    async def first(self, statement: Select[Any], params: Mapping[str, Any]) -> Row[Any] | None:
        """The first row of ``statement`` (a short, bounded read by key), or None:
        ``read`` of ``conn.execute(statement, params).first()``, as ``fetch``."""
        return await self.fetch(statement, params, _first)

    async def rows(self, statement: Select[Any], params: Mapping[str, Any]) -> Sequence[Row[Any]]:
        """Every row of ``statement`` (a short, bounded read by key): ``read``
        of ``conn.execute(statement, params).all()``, as ``fetch``."""
        return await self.fetch(statement, params, _all)

    async def fetch(
        self,
        statement: Select[Any],
        params: Mapping[str, Any],
        take: Callable[[StatementResult], T],
    ) -> T:
        """``take`` of ``statement``'s result (a short, bounded read by key):
        ``read`` of ``take(conn.execute(statement, params))``.

        Outside a recording span, a statement built once (a module constant,
        with ``bindparam``) runs prepared from its second read, without
        SQLAlchemy's per-execution work (on SQLite ``InlineReader.read_prepared``;
        on PostgreSQL on asyncpg directly, on a connection leased for the read
        alone: ``leased``). A recording span takes the way through SQLAlchemy,
        whose engine events give the statement its span.
        """
        if trace.get_current_span().is_recording():
            return await self.read(lambda conn: take(conn.execute(statement, params)))
        reader = self._inline_reader
        if reader is not None:
            return reader.read_prepared(statement, params, take)
        if self._prepared is not None:
            return take(await self._autocommitted_prepared(statement, params))
        return await self.read(lambda conn: take(conn.execute(statement, params)))

    @overload
    async def write(self, statement: Executable, params: Any) -> None: ...

    @overload
    async def write(
        self, statement: Executable, params: Any, take: Callable[[StatementResult], T]
    ) -> T: ...

    async def write(
        self,
        statement: Executable,
        params: Any,
        take: Callable[[StatementResult], Any] | None = None,
    ) -> Any:
        """One statement as a transaction of its own; ``take`` of its result.

        The same as a unit of work that runs ``statement`` and commits. On
        PostgreSQL it runs in autocommit, prepared as ``fetch`` runs it: one
        round trip instead of three. A constraint it breaks raises as in a
        unit of work, and nothing of it stays.
        """
        if self._prepared is None:
            async with self.unit_of_work() as uow:
                result = await uow.execute(statement, params)
                taken = None if take is None else take(result)
                await uow.commit()
            return taken

        if trace.get_current_span().is_recording():
            # As in ``fetch``: SQLAlchemy's way, for the statement's own span.
            async with self._connect(self._autocommit) as conn:
                written: StatementResult = await conn.execute(statement, params)
        else:
            written = await self._autocommitted_prepared(statement, params)
        return None if take is None else take(written)

    async def _autocommitted_prepared(self, statement: Executable, params: Any) -> StatementResult:
        """``statement`` in autocommit (PostgreSQL), prepared when it can be, on
        a connection leased for it alone (``leased``)."""
        assert self._prepared is not None
        bound = self._prepared.bound(statement, params)
        if bound is not None and bound[0].runs_on_asyncpg:
            compiled, values = bound
            return await run_leased(
                self._autocommit, self.service, self._connect_wait, compiled, values, params
            )
        async with self._connect(self._autocommit) as conn:
            return await _execute_async(conn, self._prepared, statement, params)

    async def migrate(self, migrations: Sequence[Migration]) -> int:
        """Apply the migrations not yet applied, in order; returns the version."""
        versions = MetaData()
        table = Table(
            "schema_migrations",
            versions,
            Column("version", Integer, primary_key=True),
            Column("applied_at", DateTime(timezone=True), nullable=False),
        )
        # On the async engine: a migration step is written against AsyncConnection
        # and may be long (a table rebuild); it need not block the loop.
        async with self._async_unit_of_work() as uow:
            assert isinstance(uow.connection, AsyncConnection)
            if self.is_postgres and self.schema is not None:
                await _lock_schema(uow.connection, self.schema)
            await uow.connection.run_sync(versions.create_all)
            current = (
                await uow.execute(select(table.c.version).order_by(table.c.version.desc()))
            ).scalar() or 0
            for migration in sorted(migrations, key=lambda m: m.version):
                if migration.version <= current:
                    continue
                await migration.apply(uow.connection)
                await uow.execute(
                    insert(table).values(version=migration.version, applied_at=utcnow())
                )
                current = migration.version
                log.info("%s: schema at version %d", self.service, current)
            await uow.commit()
        return current


async def _execute_async(
    connection: AsyncConnection,
    prepared: PreparedStatements,
    statement: Executable,
    params: Any,
) -> StatementResult:
    """``connection.execute(statement, params)``, prepared when it can be: on
    asyncpg directly, or (an executemany) on the adapter's cursor."""
    bound = prepared.bound(statement, params)
    if bound is None:
        return await connection.execute(statement, params)
    compiled, values = bound
    if compiled.runs_on_asyncpg and not connection.sync_connection.invalidated:  # type: ignore[union-attr]
        return await compiled.run_async(connection, values, params)
    return await connection.run_sync(compiled.run, values, params)


def _first(result: StatementResult) -> Row[Any] | None:
    return result.first()


def _all(result: StatementResult) -> Sequence[Row[Any]]:
    return result.all()


def create_tables(metadata: MetaData) -> Callable[[AsyncConnection], Awaitable[None]]:
    """A migration step that creates the tables of ``metadata``."""

    async def apply(conn: AsyncConnection) -> None:
        await conn.run_sync(metadata.create_all)

    return apply


def add_columns(table: Table, *names: str) -> Callable[[AsyncConnection], Awaitable[None]]:
    """A migration step adding ``table``'s columns ``names`` where they are missing.

    A fresh database already has them (``create_tables`` builds the current
    shape), so the step checks before it alters.
    """

    async def apply(conn: AsyncConnection) -> None:
        assert conn.sync_connection is not None
        translate = conn.sync_connection.get_execution_options().get("schema_translate_map")
        schema = (translate or {}).get(None)

        def existing(sync_conn: Any) -> set[str]:
            columns = inspect(sync_conn).get_columns(table.name, schema=schema)
            return {str(column["name"]) for column in columns}

        present = await conn.run_sync(existing)
        preparer = conn.dialect.identifier_preparer
        qualified = preparer.quote(table.name)
        if schema:
            qualified = f"{preparer.quote_schema(schema)}.{qualified}"
        for name in names:
            if name in present:
                continue
            column = table.c[name]
            column_type = column.type.compile(dialect=conn.dialect)
            await conn.exec_driver_sql(
                f"ALTER TABLE {qualified} ADD COLUMN {preparer.quote(name)} {column_type}"
            )
        for index in table.indexes:
            if {c.name for c in index.columns} & set(names):
                await conn.run_sync(partial(index.create, checkfirst=True))

    return apply


async def _lock_schema(conn: AsyncConnection, schema: str) -> None:
    """Hold ``schema``'s advisory lock until the transaction ends.

    Replicas of a service start together on one database (two product
    processes): without it, both create the schema or the migrations table at
    once, and one fails on PostgreSQL's unique catalogue index.
    """
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"ec-migrate:{schema}"}
    )


def _schema_name(config: StorageConfig, service: str) -> str:
    name = f"{config.schema_prefix}{service}".lower()
    if not _SCHEMA_NAME.match(name):
        raise ValueError(f"invalid schema name {name!r}")
    return name


def _async_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


@asynccontextmanager
async def open_database(
    config: StorageConfig,
    service: str,
    migrations: Sequence[Migration],
    *,
    pool_group: str = SERVICES_POOL,
) -> AsyncIterator[Database]:
    """Open (creating and migrating) the database of ``service``; on PostgreSQL
    from the process's shared pool of ``pool_group``."""
    url = _async_url(config.database_url) if config.database_url else None
    if url is not None and url.startswith("postgresql"):
        async with shared_engine(url, config, pool_group) as server:
            schema = _schema_name(config, service)
            async with server.begin() as conn:
                await _lock_schema(conn, schema)
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            # A view of the shared engine: same pool, this service's schema.
            engine = server.execution_options(schema_translate_map={None: schema})
            untrace = instrument_engine(engine, service, pool_gauge=False)
            try:
                database = Database(engine, service, schema, connect_wait=config.pool_timeout)
                yield await _migrated(database, migrations)
            finally:
                untrace()
        return
    if url is not None:  # another server kind: an engine of its own
        engine = create_async_engine(
            url,
            pool_size=config.pool_size,
            max_overflow=config.max_overflow,
            pool_timeout=config.pool_timeout,
        )
        reader = None
        writer = None
    else:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        path = Path(config.data_dir) / f"{service}.db"
        engine = create_async_engine(
            f"sqlite+aiosqlite:///{path}",
            pool_size=config.pool_size,
            max_overflow=0,
            pool_timeout=config.pool_timeout,
        )
        _tune_sqlite(engine)
        reader = InlineReader(path)
        writer = InlineWriter(path)
    uninstrument = instrument_engine(engine, service)
    uninstrument_inline = [
        instrument_engine(inline.engine, service, pool_gauge=False)
        for inline in (reader, writer)
        if inline is not None
    ]
    database = Database(
        engine,
        service,
        None,
        reader,
        connect_wait=config.pool_timeout,
        inline_writer=writer,
        path=path if reader is not None else None,
    )
    try:
        yield await _migrated(database, migrations)
    finally:
        await database.close()
        for inline in (writer, reader):
            if inline is not None:
                inline.close()
        for undo in uninstrument_inline:
            undo()
        uninstrument()
        await engine.dispose()


async def _migrated(database: Database, migrations: Sequence[Migration]) -> Database:
    await database.migrate(migrations)
    return database


def _checkpoint(path: Path) -> None:
    """Copy what the WAL holds into the database file, as far as no reader
    needs it (PASSIVE: never waits); run in a worker thread."""
    connection = sqlite3.connect(path, timeout=0)
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.OperationalError as exc:
        log.debug("checkpoint of %s skipped: %s", path, exc)
    finally:
        connection.close()


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN IMMEDIATE, not the driver, open transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.info.pop("ec_begin", "BEGIN"))
