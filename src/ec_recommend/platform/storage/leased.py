"""One prepared statement on a connection leased from the pool for just that
statement, in autocommit (PostgreSQL's reads by key and one-statement writes).

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
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
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
            wrapped = sa_exc.DBAPIError.instance(
                None,
                None,
                exc,
                dbapi_error,
                hide_parameters=sync_engine.hide_parameters,
                connection_invalidated=dialect.is_disconnect(exc, None, None),
                dialect=dialect,
            )
            raise CheckoutFailed(wrapped) from exc
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
