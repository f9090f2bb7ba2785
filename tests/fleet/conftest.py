"""The ``fleet`` fixture: the system on nine hosts in network namespaces (module-wide).

Building namespaces needs root and iproute2; without them the fleet tests
skip with the reason, unless ``EC_REQUIRE_FLEET=1`` (CI), where they fail.
The figures the tests measure are printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from tests.conftest import POSTGRES_URL, REDIS_URL, _drop_schemas, require_service
from tests.fleet.fleet import Fleet, deployed_fleet
from tests.fleet.netns import NAME_PREFIX, left_by_dead_run, netns_unavailable_reason, run_tag

REQUIRE_FLEET = os.environ.get("EC_REQUIRE_FLEET") == "1"
# name -> value, filled by the tests, printed by pytest_terminal_summary
FIGURES: dict[str, str] = {}


def record(name: str, value: str) -> None:
    FIGURES[name] = value
    print(f"fleet: {name}: {value}")


def require_netns() -> None:
    """Skip (or, with EC_REQUIRE_FLEET=1, fail) when namespaces cannot be built here."""
    reason = netns_unavailable_reason()
    if reason is None:
        return
    if REQUIRE_FLEET:
        pytest.fail(f"{reason} (EC_REQUIRE_FLEET=1)")
    pytest.skip(reason)


async def _drop_schemas_of_dead_runs() -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        rows = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", NAME_PREFIX + "%"
        )
        dead = [row["nspname"] for row in rows if left_by_dead_run(row["nspname"])]
    finally:
        await conn.close()
    for name in dead:
        await _drop_schemas(name)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    require_netns()
    require_service(POSTGRES_URL, 5432, "PostgreSQL")
    require_service(REDIS_URL, 6379, "Redis")
    asyncio.run(_drop_schemas_of_dead_runs())  # a killed run could not drop its own
    directory = tmp_path_factory.mktemp("fleet")
    try:
        with deployed_fleet(directory, POSTGRES_URL, REDIS_URL) as running:
            yield running
    finally:
        asyncio.run(_drop_schemas(f"{run_tag()}_"))  # every service's schema


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("fleet figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
