"""One process, every service, one PostgreSQL pool: the connection budget holds.

Before, each service opened its own engine (pool + overflow each), so a
process hosting them all held a connection per database at rest and up to
13 × 10 under load.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import Pool

from ec_recommend._gen.ecommerce import cart as pb_cart
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.config import Config, RpcConfig, StorageConfig
from ec_recommend.platform.rpc.context import CallContext, call_scope
from ec_recommend.platform.storage import open_database
from ec_recommend.platform.storage.engines import CONSUMERS_POOL
from ec_recommend.runtime.host import host_services
from ec_recommend.runtime.registry import available_services
from tests.postgres_roles import postgres_role

pytestmark = pytest.mark.asyncio

POOL_SIZE, MAX_OVERFLOW = 2, 1


async def test_every_service_in_one_process_shares_one_bounded_pool(tmp_path: Path) -> None:
    async with postgres_role() as role:
        storage = StorageConfig(
            data_dir=tmp_path,
            database_url=role.url,
            schema_prefix=f"t{uuid.uuid4().hex[:8]}_",
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
            pool_timeout=30.0,  # this test is about the count, not about waiting
        )
        config = Config(storage=storage, rpc=RpcConfig(drain_timeout=5.0))
        async with host_services(config, available_services()) as hosted:
            assert len(hosted.servers) >= 8  # eight databases, one pool
            assert await role.connections() <= POOL_SIZE + MAX_OVERFLOW

            products = hosted.clients.stub(pb_product.ProductServiceStub, "product")
            carts = hosted.clients.stub(pb_cart.CartServiceStub, "cart")
            listing = pb_product.ListProductsRequest()

            async def reads() -> None:
                with call_scope(CallContext()):
                    await products.list_products(listing)
                    await carts.get_cart(pb_cart.GetCartRequest(user_id=str(uuid.uuid4())))

            peak = 0
            for _ in range(3):
                burst = asyncio.gather(*(reads() for _ in range(20)))
                peak = max(peak, await role.connections())
                await burst
                peak = max(peak, await role.connections())
        assert peak <= POOL_SIZE + MAX_OVERFLOW


async def test_consumers_holding_every_connection_never_starve_the_services(
    tmp_path: Path,
) -> None:
    """A consumer's handler holds its unit of work while it calls a service
    hosted in the same process; were they one pool, handlers holding every
    connection would wait for services that wait for a connection."""
    async with postgres_role() as role:
        storage = StorageConfig(
            data_dir=tmp_path,
            database_url=role.url,
            schema_prefix=f"t{uuid.uuid4().hex[:8]}_",
            pool_size=1,
            max_overflow=0,
            pool_timeout=1.0,
        )
        async with (
            open_database(storage, "inventory", [], pool_group=CONSUMERS_POOL) as inbox,
            open_database(storage, "product", []) as service,
            inbox.unit_of_work() as handler,  # every consumer connection, held
        ):
            await handler.execute(sa.text("SELECT 1"))
            async with service.reading() as conn:  # the service still gets one
                assert (await conn.execute(sa.text("SELECT 1"))).scalar_one() == 1


async def test_connections_a_burst_opened_are_kept_for_the_next_burst(tmp_path: Path) -> None:
    """Opening a PostgreSQL connection starts a server process (and asyncpg's
    statement cache starts empty on it). A pool that closed its overflow
    connections as they came back opened ~0.8 connections per order under
    the checkout bench; within the same ceiling, connections are now kept."""
    opened = 0

    def count(*_: object) -> None:
        nonlocal opened
        opened += 1

    ceiling = POOL_SIZE + MAX_OVERFLOW
    event.listen(Pool, "connect", count)
    try:
        async with postgres_role() as role:
            storage = StorageConfig(
                data_dir=tmp_path,
                database_url=role.url,
                schema_prefix=f"t{uuid.uuid4().hex[:8]}_",
                pool_size=POOL_SIZE,
                max_overflow=MAX_OVERFLOW,
                pool_timeout=30.0,
            )
            async with open_database(storage, "product", []) as db:

                async def hold() -> None:  # every holder at once: the whole ceiling in use
                    async with db.reading() as conn:
                        await conn.execute(sa.text("SELECT pg_sleep(0.05)"))

                for _ in range(4):
                    await asyncio.gather(*(hold() for _ in range(ceiling)))
                assert await role.connections() <= ceiling
    finally:
        event.remove(Pool, "connect", count)
    assert opened == ceiling
