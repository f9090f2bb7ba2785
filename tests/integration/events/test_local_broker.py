"""moto's child: it dies with its parent, and a supervised one comes back when killed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

import pytest

from ec_recommend.runtime.local_aws import LocalAws
from ec_recommend.runtime.local_broker import LocalBroker
from tests.conftest import wait_for

pytestmark = pytest.mark.asyncio

# A parent that starts moto's server the way ``up`` does, says the child's pid, then waits.
PARENT = """
import asyncio, os, sys
from ec_recommend.runtime.local_aws import moto_server

async def main():
    async with moto_server():
        children = open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split()
        print(children[0], flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
async def test_the_moto_child_dies_with_a_parent_killed_by_sigkill() -> None:
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PARENT, stdout=asyncio.subprocess.PIPE
    )
    assert parent.stdout is not None
    line = await asyncio.wait_for(parent.stdout.readline(), 60)
    moto = int(line)
    assert alive(moto)
    parent.kill()
    await parent.wait()
    try:
        await wait_for(lambda: not alive(moto), timeout=15)
    finally:
        if alive(moto):
            os.kill(moto, signal.SIGKILL)


async def test_a_killed_broker_is_back_on_its_port_after_on_restart() -> None:
    restored: list[tuple[str, datetime]] = []

    async def on_restart(aws: LocalAws, died_started_at: datetime) -> None:
        restored.append((aws.endpoint_url, died_started_at))

    async with LocalBroker() as broker:
        broker.on_restart = on_restart
        endpoint, first_pid, first_start = broker.aws.endpoint_url, broker.pid, broker.started_at
        assert broker.state() == "up" and first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        await wait_for(lambda: broker.state() == "down", timeout=5, interval=0.01)
        await wait_for(lambda: broker.restarts == 1, timeout=60)
        assert broker.state() == "up"
        assert broker.aws.endpoint_url == endpoint and broker.pid != first_pid
        assert restored == [(endpoint, first_start)]
        assert broker.started_at > first_start


async def test_a_paused_broker_is_down_until_it_answers_again() -> None:
    async with LocalBroker() as broker:
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            await wait_for(lambda: broker.state() == "down", timeout=15)
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        await wait_for(lambda: broker.state() == "up", timeout=15)
        assert broker.restarts == 0
