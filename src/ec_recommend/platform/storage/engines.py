"""One engine, one pool, per database server and process.

Every service and consumer a process hosts on the same PostgreSQL server
shares one ``AsyncEngine``; each keeps its own schema through
``schema_translate_map`` on a view of it. So a process holds at most
``pool_size + max_overflow`` connections, however many services it hosts
(``up`` once held 13 pools of 10). The engine lives while any database
opened on it is open, and belongs to the event loop that created it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ec_recommend.config import StorageConfig
from ec_recommend.platform.telemetry.database import report_pool

POOL_LABEL = "shared"  # the pool gauges' ``service`` label for a shared pool


@dataclass
class _Shared:
    engine: AsyncEngine
    users: int
    unreport: Callable[[], None]


_engines: dict[tuple[str, int, int, float, int], _Shared] = {}


@asynccontextmanager
async def shared_engine(url: str, config: StorageConfig) -> AsyncIterator[AsyncEngine]:
    """The process's engine for ``url``: created on first use, disposed after the last."""
    key = (
        url,
        config.pool_size,
        config.max_overflow,
        config.pool_timeout,
        id(asyncio.get_running_loop()),
    )
    shared = _engines.get(key)
    if shared is None:
        engine = create_async_engine(
            url,
            pool_size=config.pool_size,
            max_overflow=config.max_overflow,
            pool_timeout=config.pool_timeout,
            pool_pre_ping=False,
        )
        shared = _engines[key] = _Shared(engine, 0, report_pool(engine, POOL_LABEL))
    shared.users += 1
    try:
        yield shared.engine
    finally:
        shared.users -= 1
        if shared.users == 0:
            del _engines[key]
            shared.unreport()
            await shared.engine.dispose()
