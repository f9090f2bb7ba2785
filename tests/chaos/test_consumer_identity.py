"""The inventory consumer in its own process, under STRICT mTLS, with its own certificate.

Product and order run in this process (STRICT, certificates from ``certs
init``); ``ec-recommend serve inventory`` runs as a child that presents only
``inventory.crt``. Every order event it subscribes to (order.cancelled; the
order service commits a paid order's stock itself) must be handled there
(its inbox) and none dead-lettered: before the fix, CommitStock/ReleaseStock answered
PERMISSION_DENIED to inventory and the events went to order-processing-dlq.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

import pytest
import sqlalchemy as sa

from ec_recommend.config import Config, EventsConfig, RpcConfig, StorageConfig, TlsConfig
from ec_recommend.platform.events.aws import aws_client
from ec_recommend.platform.events.dlq import depths
from ec_recommend.platform.events.inbox import inbox
from ec_recommend.platform.events.provision import provision
from ec_recommend.platform.events.topology import load_topology
from ec_recommend.platform.security.certs import init_certificates
from ec_recommend.platform.security.tls import GATEWAY
from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.host import host_services
from ec_recommend.runtime.local_aws import LocalAws
from ec_recommend.runtime.registry import certificate_names
from tests.chaos.invariants import check_stock, stock_levels
from tests.conftest import events_on, wait_for
from tests.integration.order.shop import Shop, acting_as, new_user

pytestmark = [pytest.mark.asyncio, pytest.mark.chaos]

DLQ = "order-processing-dlq"

CALL_KEY = secrets.token_bytes(32)


@pytest.fixture
def child_log(tmp_path: Path) -> Iterator[IO[bytes]]:
    """The child's stderr, kept in the test's directory (read it when the test fails)."""
    with (tmp_path / "inventory.log").open("wb") as log:
        yield log


@asynccontextmanager
async def inventory_process(
    certs: Path, events: EventsConfig, endpoints: dict[str, str], data_dir: Path, log: IO[bytes]
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``ec-recommend serve inventory`` with only inventory's certificate."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EC_", "AWS_"))}
    env.update(
        {
            "EC_TLS_MODE": "STRICT",
            "EC_TLS_CA": str(certs / "ca.crt"),
            "EC_TLS_CERT": str(certs / "inventory.crt"),
            "EC_TLS_KEY": str(certs / "inventory.key"),
            # every process of one system signs call identities with one key
            "EC_CALL_IDENTITY_KEY": CALL_KEY.hex(),
            "EC_AWS_ENDPOINT_URL": str(events.endpoint_url),
            "EC_AWS_REGION": events.region,
            "EC_EVENTS_PREFIX": events.name_prefix,
            "EC_CONSUMER_WAIT_SECONDS": "1",
            "EC_LOG_LEVEL": "WARNING",
            **{f"EC_ENDPOINTS_{name.upper()}": address for name, address in endpoints.items()},
        }
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ec_recommend.cli",
        "serve",
        "inventory",
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
        env=env,
    )
    assert child.stdout is not None
    try:
        ready = json.loads(await asyncio.wait_for(child.stdout.readline(), 60))
        assert ready["consumers"] == ["inventory"]
        yield child
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
            await asyncio.wait_for(child.wait(), 30)


async def _handled(data_dir: Path) -> list[str]:
    """Event types the child's inventory consumer applied (its inbox)."""
    async with (
        open_database(StorageConfig(data_dir=data_dir), "inventory", []) as db,
        db.reading() as conn,
    ):
        if not await conn.run_sync(lambda c: sa.inspect(c).has_table(inbox.name)):
            return []
        rows = await conn.execute(sa.select(inbox.c.event_type))
        return sorted(row.event_type for row in rows)


async def _dead_letters(events: EventsConfig) -> int:
    async with aws_client("sqs", events) as sqs:
        return (await depths(sqs, events, load_topology(events.topology_path)))[DLQ]


async def test_inventory_in_its_own_process_handles_every_order_event_under_strict(
    tmp_path: Path, local_aws: LocalAws, child_log: IO[bytes]
) -> None:
    certs = tmp_path / "certs"
    init_certificates(certs, certificate_names())  # what `ec-recommend certs init` writes
    tls = TlsConfig(
        mode="STRICT",
        ca=certs / "ca.crt",
        cert=certs / "gateway.crt",
        key=certs / "gateway.key",
        cert_dir=certs,
        call_key=CALL_KEY,
    )
    events = events_on(local_aws, relay_interval=0.05, consumer_wait_seconds=1)
    await provision(events, load_topology(events.topology_path))
    config = Config(
        storage=StorageConfig(data_dir=tmp_path / "services"),
        rpc=RpcConfig(drain_timeout=5.0),
        tls=tls,
        events=events,
    )
    async with host_services(config, ["product", "order"], identity=GATEWAY) as hosted:
        shop = Shop(hosted)
        endpoints = hosted.endpoints()
        async with inventory_process(certs, events, endpoints, tmp_path / "inventory", child_log):
            product = await shop.product(stock=5)
            before = await stock_levels(config.storage)
            with acting_as(new_user()):
                paid = await shop.order((product.id, 2))
                assert (await shop.pay(paid.id)).status == "SUCCEEDED"
                cancelled = await shop.order((product.id, 1))
                await shop.set_status(cancelled.id, "CANCELLED")

            expected = ["order.cancelled"]
            await wait_for(
                lambda: _handled_is(tmp_path / "inventory", expected), timeout=45, interval=0.2
            )
        assert await _dead_letters(events) == 0
        assert await shop.stock(product.id) == (3, 0)
        await check_stock(config.storage, before)


async def _handled_is(data_dir: Path, expected: list[str]) -> bool:
    return await _handled(data_dir) == expected
