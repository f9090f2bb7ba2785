"""A PostgreSQL login role of a test's own, to count and to limit its connections.

``pg_stat_activity`` rows of the role are exactly the connections the code
under test opened; ``CONNECTION LIMIT`` makes the server itself refuse more
(``TooManyConnectionsError``), as a server at ``max_connections`` would. The
role, and every schema it made, is dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlparse, urlunparse

import asyncpg

from tests.conftest import POSTGRES_URL, require_service


@dataclass(frozen=True)
class Role:
    name: str
    url: str  # the test server's URL, logged in as this role

    async def connections(self) -> int:
        """Connections the role holds right now (asked as the superuser)."""
        admin = await asyncpg.connect(POSTGRES_URL)
        try:
            count = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", self.name
            )
            return int(count)
        finally:
            await admin.close()


@asynccontextmanager
async def postgres_role(connection_limit: int = -1) -> AsyncIterator[Role]:
    require_service(POSTGRES_URL, 5432, "PostgreSQL")
    name = f"ec_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        database = await admin.fetchval("SELECT current_database()")
        await admin.execute(f"CREATE ROLE {name} LOGIN CONNECTION LIMIT {int(connection_limit)}")
        await admin.execute(f'GRANT CREATE ON DATABASE "{database}" TO {name}')
        parsed = urlparse(POSTGRES_URL)
        netloc = f"{name}@{parsed.hostname}:{parsed.port or 5432}"
        yield Role(name, urlunparse(parsed._replace(netloc=netloc)))
    finally:
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name
            )
            await admin.execute(f"DROP OWNED BY {name} CASCADE")
            await admin.execute(f"DROP ROLE IF EXISTS {name}")
        finally:
            await admin.close()
