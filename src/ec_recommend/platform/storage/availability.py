"""A database that cannot hand out a connection now: a typed error with a retry hint.

Only failures to *obtain* a connection are translated, so nothing was done
and the caller may safely come back: the process's pool had no connection
free within ``pool_timeout``, the server refused one more (too many for the
server or for our role), is starting or stopping, or cannot be reached. The
service answers UNAVAILABLE (the gateway: 503 with ``Retry-After``), never
INTERNAL. Failures of a statement on a connection we hold stay bugs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ec_recommend.platform import errors
from ec_recommend.platform.retry import Backoff, RetriesExhausted, with_retry

log = logging.getLogger(__name__)

T = TypeVar("T")

# While the server refuses one more connection, ours may come back to the pool
# any moment: look again soon, for as long as the pool itself would wait.
_REFUSED_BACKOFF = Backoff(initial_delay=0.01, max_delay=0.2, multiplier=2.0, jitter=0.5)

# SQLSTATEs of a server that will not take the connection now
_BUSY = frozenset({"53300"})  # too_many_connections (server or role limit)
_REFUSING = frozenset({"57P03", "57P01", "57P02"})  # cannot_connect_now, admin/crash shutdown
_CONNECTION_CLASS = "08"  # connection_exception and its kind


def _sqlstate(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None), exc):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str):
            return state
    return ""


def connection_unavailable(
    exc: BaseException, service: str, *, retry_after: int = 1
) -> errors.Unavailable | None:
    """The typed error for a failed connection attempt, or None if it is a bug."""
    if isinstance(exc, sa_exc.TimeoutError):
        reason = "database_busy"  # our own pool: every connection in use
    elif isinstance(exc, sa_exc.DBAPIError | OSError):
        state = _sqlstate(exc)
        if state in _BUSY:
            reason = "database_busy"
        elif state in _REFUSING or state.startswith(_CONNECTION_CLASS) or not state:
            reason = "database_unavailable"
        else:
            return None
    else:
        return None
    return errors.Unavailable(
        f"the {service} database has no connection free; retry later",
        reason=reason,
        retry_after=str(max(1, retry_after)),
    )


def _server_busy(exc: Exception) -> bool:
    return isinstance(exc, sa_exc.DBAPIError) and _sqlstate(exc) in _BUSY


class CheckoutFailed(Exception):
    """No connection was handed out, so nothing ran; ``cause`` says why."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


async def open_connection(engine: AsyncEngine, service: str, wait: float) -> AsyncConnection:
    """A started connection of ``engine``, or ``errors.Unavailable`` (see ``obtained``)."""

    async def attempt() -> AsyncConnection:
        try:
            conn = engine.connect()
            await conn.start()
        except Exception as exc:
            raise CheckoutFailed(exc) from exc
        return conn

    return await obtained(attempt, service, wait)


async def obtained(attempt: Callable[[], Awaitable[T]], service: str, wait: float) -> T:
    """``attempt()``, whose failures to obtain a connection raise ``CheckoutFailed``;
    those become ``errors.Unavailable`` (or, a bug, their cause). Whatever else
    it raises (a statement's own error) passes through.

    When the server refuses a new connection (its limit, or our role's), we
    try again, up to ``wait`` seconds as the pool would wait, for one of ours
    to return.
    """
    deadline = asyncio.get_running_loop().time() + wait
    try:
        return await with_retry(
            attempt,
            is_retryable=lambda exc: isinstance(exc, CheckoutFailed) and _server_busy(exc.cause),
            backoff=_REFUSED_BACKOFF,
            max_attempts=None,
            deadline=deadline,
        )
    except RetriesExhausted as exhausted:
        assert isinstance(exhausted.last, CheckoutFailed)  # retried only those
        failure = exhausted.last.cause
    except CheckoutFailed as failed:
        failure = failed.cause
    refused = connection_unavailable(failure, service)
    if refused is None:
        raise failure
    log.warning("%s: no database connection: %s", service, failure)
    raise refused from failure
