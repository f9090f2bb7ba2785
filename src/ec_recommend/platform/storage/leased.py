"""One prepared statement on a connection leased from the pool for just that
statement, in autocommit (PostgreSQL's reads by key and one-statement writes);
a unit of work's COMMIT and checkin without SQLAlchemy's greenlets.

Through ``AsyncEngine.connect()`` such a statement also pays for the
``Connection`` and ``AsyncConnection`` around the pooled connection: a
greenlet to check it out and another to check it in, each switched into and
out of, the autocommit characteristic set and reset through the dialect,
the connection's events: ~70 µs of CPU a statement, more than its round
trip costs asyncpg. Here the pool's own checkout, the statement and the
checkin run in one greenlet, and autocommit is the adapter's flag, set after
the checkout and cleared before the checkin (the pool resets the connection
on checkin as always).

Nothing else changes for a caller: the pool's limits and timeout, the typed
error when no connection can be had (``availability``; a driver's error on
connecting wrapped as SQLAlchemy wraps it), the statement's own errors as
SQLAlchemy raises them, and a connection dropped after a disconnect or a
cancellation.

A unit of work on PostgreSQL ended the same way: ``AsyncConnection.commit()``
and ``close()`` each entered a greenlet, ~85 µs of CPU between them beyond
the COMMIT's round trip. ``commit_on_adapter`` sends the COMMIT through the
adapter's own transaction, as its ``commit()`` does, then lets SQLAlchemy
close its transaction, which finds nothing left to send; ``close_settled``
checks in a connection with nothing to roll back directly, since the pool
then has nothing to await either.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import await_only, greenlet_spawn

from ec_recommend.platform.storage.availability import CheckoutFailed, obtained
from ec_recommend.platform.storage.prepared import PreparedStatement
from ec_recommend.platform.storage.results import PreparedResult


async def run_leased(
    engine: AsyncEngine,
    service: str,
    wait: float,
    statement: PreparedStatement,
    values: Any,
    params: Any,
) -> PreparedResult:
    """``statement`` (``runs_on_asyncpg``) in autocommit on a connection of
    ``engine``'s pool, checked out for it and back in the pool after."""
    sync_engine = engine.sync_engine
    pool, dialect = sync_engine.pool, sync_engine.dialect
    dbapi_error = dialect.loaded_dbapi.Error

    def checkout() -> PoolProxiedConnection:
        try:
            return pool.connect()
        except dbapi_error as exc:  # as ``Connection`` wraps a failed connect
            disconnect = dialect.is_disconnect(exc, None, None)
            raise CheckoutFailed(_as_sqlalchemy_raises(exc, sync_engine, disconnect)) from exc
        except Exception as exc:  # the pool's timeout; a refused socket
            raise CheckoutFailed(exc) from exc

    def leased() -> PreparedResult:
        connection = checkout()
        try:
            adapter: Any = connection.dbapi_connection
            adapter.autocommit = True
            try:
                return await_only(
                    statement.run_on_adapter(adapter, connection.invalidate, values, params)
                )
            finally:
                if connection.is_valid:
                    adapter.autocommit = False
        finally:
            connection.close()

    async def attempt() -> PreparedResult:
        return await greenlet_spawn(leased)

    return await obtained(attempt, service, wait)


async def commit_on_adapter(connection: AsyncConnection) -> None:
    """``connection.commit()``: the COMMIT sent on asyncpg's adapter directly.

    Its failure raises as SQLAlchemy's commit raises it (a disconnect drops
    the connection). A cancellation drops the connection too, as SQLAlchemy
    does: whether the COMMIT reached the server is unknown, and if it did
    not, the server's transaction is still open on that connection.
    """
    sync = connection.sync_connection
    assert sync is not None
    adapter: Any = sync.connection.dbapi_connection
    transaction = adapter._transaction
    if transaction is not None:
        try:
            await adapter._call_and_discard(transaction.commit)
        except Exception as exc:
            try:
                adapter._handle_exception(exc)  # raises the adapter's DB-API error
            except sync.dialect.loaded_dbapi.Error as translated:
                disconnect = sync.dialect.is_disconnect(translated, adapter, None)
                error = _as_sqlalchemy_raises(translated, sync.engine, disconnect)
                if disconnect:
                    sync.invalidate(error)
                raise error from translated
            raise
        except BaseException as exc:
            sync.invalidate(exc)
            raise
    sync.commit()  # SQLAlchemy's own bookkeeping: the adapter has nothing left to commit


async def close_settled(connection: AsyncConnection) -> None:
    """``connection.close()``; directly when there is nothing to roll back."""
    sync = connection.sync_connection
    if (
        sync is not None
        and not sync.closed
        and not sync.invalidated
        and not sync.in_transaction()
        and sync.connection.dbapi_connection._transaction is None  # type: ignore[union-attr]
    ):
        sync.close()  # checkin: the pool's reset has nothing to send
        return
    await connection.close()


def _as_sqlalchemy_raises(exc: Exception, engine: Engine, disconnect: bool) -> sa_exc.DBAPIError:
    """The driver's ``exc``, from no statement, as SQLAlchemy wraps it."""
    error = sa_exc.DBAPIError.instance(
        None,
        None,
        exc,
        engine.dialect.loaded_dbapi.Error,
        hide_parameters=engine.hide_parameters,
        connection_invalidated=disconnect,
        dialect=engine.dialect,
    )
    assert isinstance(error, sa_exc.DBAPIError)
    return error
