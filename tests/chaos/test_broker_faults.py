"""The local broker dies, pauses, or outlives ``up``: no event of a paid order is lost.

Each scenario runs its own ``ec-recommend up`` (own data dir, port 0) as a
subprocess, buys with the demo customer over HTTP around the fault, and then
checks the invariants: every order.paid in the order outbox is in the inbox
of every subscriber, and stock is conserved with nothing reserved for nobody.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ec_recommend.client import Client
from ec_recommend.config import StorageConfig
from ec_recommend.platform.clock import utcnow
from ec_recommend.runtime.demo import DEMO_USERS
from ec_recommend.runtime.local_system import DEMO_PASSWORD
from ec_recommend.runtime.replay_window import read_mark
from tests.chaos.invariants import (
    Stock,
    check_stock,
    payments_in_flight,
    stock_levels,
    unhandled_paid_events,
)
from tests.conftest import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.asyncio]

CUSTOMER = next(email for _, email, _ in DEMO_USERS if "customer" in email)


@contextmanager
def running_up(data_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``ec-recommend up`` on ``data_dir``; stopped with SIGTERM unless already gone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EC_")}
    env.update({"EC_LOG_LEVEL": "WARNING", "EC_TRUSTED_PROXIES": "127.0.0.1"})
    endpoints = data_dir / "endpoints.json"
    endpoints.unlink(missing_ok=True)  # left behind by a killed up; wait for the new one
    command = [sys.executable, "-m", "ec_recommend.cli", "up", "--port", "0"]
    with (data_dir / "up.log").open("ab") as log:
        child = subprocess.Popen(
            [*command, "--data-dir", str(data_dir)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )
        try:
            deadline = time.monotonic() + 120
            while not endpoints.exists():
                if child.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"ec-recommend up did not start; see {data_dir / 'up.log'}")
                time.sleep(0.2)
            yield child
        finally:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(60)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


def gateway(data_dir: Path) -> str:
    return str(json.loads((data_dir / "endpoints.json").read_text())["gateway_url"])


def moto_child(up: subprocess.Popen[bytes]) -> int:
    """The pid of the moto server ``up`` runs (a direct child)."""
    for task in Path(f"/proc/{up.pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            with suppress(OSError):
                if b"moto_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return int(pid)
    raise AssertionError("up runs no moto server child")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    with suppress(OSError):
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    return False


def readiness(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return dict(json.loads(error.read()))
    except OSError:
        return {}


async def broker_is(url: str, state: str) -> bool:
    return readiness(url).get("broker") == state


@asynccontextmanager
async def buyer(url: str) -> AsyncIterator[Client]:
    async with Client(url, headers={"X-Forwarded-For": "10.9.9.9"}) as client:
        await client.login(CUSTOMER, DEMO_PASSWORD)
        yield client


async def buy(client: Client, count: int) -> list[str]:
    """``count`` paid orders of one unit of the first demo product; their ids."""
    product = (await client.list_products()).items[0]["id"]
    paid = []
    for _ in range(count):
        order = await client.create_order([(product, 1)])
        payment = await client.pay(order["id"], "tok_visa")
        assert payment["status"] == "SUCCEEDED"
        paid.append(order["id"])
    return paid


async def all_sent(storage: StorageConfig) -> bool:
    from ec_recommend.platform.events.outbox import outbox
    from ec_recommend.platform.storage import open_database

    async with open_database(storage, "order", []) as db, db.reading() as conn:
        query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return int((await conn.execute(query)).scalar_one()) == 0


async def all_handled(storage: StorageConfig) -> bool:
    return not await unhandled_paid_events(storage)


async def settle(storage: StorageConfig, before: dict[str, Stock]) -> None:
    """Every paid order's events applied by every subscriber; stock conserved; no payment open."""
    try:
        await wait_for(lambda: all_handled(storage), timeout=60, interval=0.25)
    finally:
        assert await unhandled_paid_events(storage) == {}
    await check_stock(storage, before)
    assert await payments_in_flight(storage, timedelta(0)) == []


async def test_a_killed_broker_is_restarted_and_every_paid_order_is_handled(
    tmp_path: Path,
) -> None:
    storage = StorageConfig(data_dir=tmp_path)
    with running_up(tmp_path) as up:
        url = gateway(tmp_path)
        await wait_for(lambda: broker_is(url, "up"), timeout=60)
        before = await stock_levels(storage)
        async with buyer(url) as client:
            await buy(client, 3)
            old = moto_child(up)
            os.kill(old, signal.SIGKILL)
            await wait_for(lambda: broker_is(url, "down"), timeout=10, interval=0.05)
            await buy(client, 3)  # orders keep flowing; their events wait in the outbox
            await wait_for(lambda: broker_is(url, "up"), timeout=60)
            assert moto_child(up) != old
            await buy(client, 2)
        async with buyer(url) as again:  # the pool came back with its id and the demo accounts
            await buy(again, 1)
        await settle(storage, before)
        assert readiness(url).get("status") == "ready"


async def test_a_paused_broker_is_reported_and_loses_nothing(tmp_path: Path) -> None:
    storage = StorageConfig(data_dir=tmp_path)
    with running_up(tmp_path) as up:
        url = gateway(tmp_path)
        await wait_for(lambda: broker_is(url, "up"), timeout=60)
        before = await stock_levels(storage)
        async with buyer(url) as client:
            await buy(client, 2)
            moto = moto_child(up)
            os.kill(moto, signal.SIGSTOP)
            try:
                await wait_for(lambda: broker_is(url, "down"), timeout=15)
                await buy(client, 3)
            finally:
                os.kill(moto, signal.SIGCONT)
            await wait_for(lambda: broker_is(url, "up"), timeout=30)
            assert moto_child(up) == moto  # paused, not replaced
        await settle(storage, before)
        settled = utcnow()
    # A clean stop let every event arrive: the next start replays from the stop, not before.
    mark = read_mark(tmp_path)
    assert mark is not None and mark > settled


async def test_kill_9_of_up_leaves_no_broker_and_a_restart_replays(tmp_path: Path) -> None:
    storage = StorageConfig(data_dir=tmp_path)
    with running_up(tmp_path) as up:
        url = gateway(tmp_path)
        await wait_for(lambda: broker_is(url, "up"), timeout=60)
        before = await stock_levels(storage)
        async with buyer(url) as client:
            await buy(client, 3)
        # The broker has accepted every event; paused, it delivers none of those
        # still queued, and the kill takes them with it.
        await wait_for(lambda: all_sent(storage), timeout=30)
        moto = moto_child(up)
        os.kill(moto, signal.SIGSTOP)
        up.kill()
        up.wait()
        os.kill(moto, signal.SIGCONT)  # so it can act on the SIGTERM its parent's death sent
        await wait_for(lambda: not alive(moto), timeout=15)
    with running_up(tmp_path):
        url = gateway(tmp_path)
        await wait_for(lambda: broker_is(url, "up"), timeout=60)
        async with buyer(url) as client:
            await buy(client, 2)
        await settle(storage, before)
        command = [sys.executable, "-m", "ec_recommend.cli", "events", "replay", "--since", "1h"]
        for _ in range(2):  # replaying by hand is harmless, twice
            replay = await asyncio.create_subprocess_exec(
                *command, "--data-dir", str(tmp_path), stderr=asyncio.subprocess.PIPE
            )
            _, errors = await asyncio.wait_for(replay.communicate(), 60)
            assert replay.returncode == 0, errors
        await settle(storage, before)
