"""Shared fixtures.

Integration tests run against real stores. ``storage`` is parametrized over
SQLite and PostgreSQL; the PostgreSQL run skips with a reason when the server
is unreachable, and fails instead when ``EC_REQUIRE_SERVICES=1`` (CI).
Each test gets its own SQLite directory or its own PostgreSQL schemas, which
are dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from urllib.parse import urlparse

import pytest
import pytest_asyncio

from ec_recommend.config import Config, EventsConfig, RpcConfig, StorageConfig
from ec_recommend.runtime.host import HostedServices, host_services
from ec_recommend.runtime.local_aws import LocalAws
from tests.moto_child import LOCAL_BROKER, moto_child

POSTGRES_URL = os.environ.get("EC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("EC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("EC_REQUIRE_SERVICES") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


def require_service(url: str, default_port: int, name: str) -> None:
    """Skip (or, in CI, fail) when an external server the test needs is down."""
    if _reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (EC_REQUIRE_SERVICES=1)")
    pytest.skip(message)


async def _drop_schemas(prefix: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        rows = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix + "%"
        )
        for row in rows:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{row["nspname"]}" CASCADE')
    finally:
        await conn.close()


@pytest_asyncio.fixture(params=["sqlite", "postgres"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageConfig]:
    """A fresh storage configuration on each engine."""
    if request.param == "sqlite":
        yield StorageConfig(data_dir=tmp_path / "data")
        return
    require_service(POSTGRES_URL, 5432, "PostgreSQL")
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    try:
        yield StorageConfig(
            data_dir=tmp_path / "data",
            database_url=POSTGRES_URL,
            schema_prefix=prefix,
            pool_size=10,
        )
    finally:
        await _drop_schemas(prefix)


@pytest.fixture
def config(storage: StorageConfig) -> Config:
    return Config(storage=storage, rpc=RpcConfig(drain_timeout=5.0, default_timeout=10.0))


ServicesFactory = Callable[..., AbstractAsyncContextManager[HostedServices]]


@pytest.fixture
def services(config: Config) -> ServicesFactory:
    """``async with services("user", "product") as hosted:`` on ephemeral ports."""

    def start(
        *names: str, config_override: Config | None = None
    ) -> AbstractAsyncContextManager[HostedServices]:
        return host_services(config_override or config, names)

    return start


@pytest.fixture(params=["grpcio", "grpclib"])
def rpc_transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test once per transport between processes (servers and clients
    built without naming one use it): both stay honest."""
    from ec_recommend.platform.rpc import transports

    transport: str = request.param
    monkeypatch.setattr(transports, "DEFAULT", transport)
    return transport


async def wait_for(
    predicate: Callable[[], object], *, timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Poll ``predicate`` (sync or async) until it is truthy, or fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def events_on(aws: LocalAws, **settings: object) -> EventsConfig:
    """Events enabled against ``aws``, with topic and queue names unique to the caller."""
    return EventsConfig(
        enabled=True,
        endpoint_url=aws.endpoint_url,
        region=aws.region,
        name_prefix=f"t{uuid.uuid4().hex[:8]}-",
        **settings,  # type: ignore[arg-type]  # keyword fields of EventsConfig
    )


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    """One moto server child for the whole session; tests use unique resource names.

    Synchronous on purpose, so tests on any event loop scope can use it.
    """
    with moto_child(LOCAL_BROKER) as aws:
        yield aws
