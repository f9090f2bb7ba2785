"""One pool per database server, process and group.

Every service a process hosts on the same PostgreSQL server shares one
``AsyncEngine``; each keeps its own schema through ``schema_translate_map``
on a view of it. So a process holds at most ``pool_size + max_overflow``
connections for its services however many it hosts (``up`` once held 13
pools of 10), and as many again for its event consumers.

Consumers have a pool of their own because a handler holds its unit of work
(inbox and effects in one transaction) while it calls services, which may be
hosted in the same process: in one pool, handlers holding every connection
would wait for services waiting for a connection. The engine lives while
any database opened on it is open, and belongs to the event loop that
created it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ec_recommend.config import StorageConfig
from ec_recommend.platform.telemetry.database import report_pool

SERVICES_POOL = "services"
CONSUMERS_POOL = "consumers"


@dataclass
class _Shared:
    engine: AsyncEngine
    users: int
    unreport: Callable[[], None]


_engines: dict[tuple[str, str, int, int, float, int], _Shared] = {}


@asynccontextmanager
async def shared_engine(
    url: str, config: StorageConfig, group: str = SERVICES_POOL
) -> AsyncIterator[AsyncEngine]:
    """The process's engine for ``url`` and ``group``: created on first use,
    disposed after the last."""
    key = (
        url,
        group,
        config.pool_size,
        config.max_overflow,
        config.pool_timeout,
        id(asyncio.get_running_loop()),
    )
    shared = _engines.get(key)
    if shared is None:
        # The ceiling is pool_size + max_overflow, and every connection opened
        # stays for the next checkout: QueuePool closes an overflow connection
        # when it comes back, and reopening one costs a server process, a
        # login and asyncpg's statement cache (~0.8 reopened per order under
        # the checkout bench with 10 + 10).
        engine = create_async_engine(
            url,
            pool_size=config.pool_size + config.max_overflow,
            max_overflow=0,
            pool_timeout=config.pool_timeout,
            pool_pre_ping=False,
        )
        shared = _engines[key] = _Shared(engine, 0, report_pool(engine, f"shared-{group}"))
    shared.users += 1
    try:
        yield shared.engine
    finally:
        shared.users -= 1
        if shared.users == 0:
            del _engines[key]
            shared.unreport()
            await shared.engine.dispose()
