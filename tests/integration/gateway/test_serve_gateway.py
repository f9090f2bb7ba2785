"""``ec-recommend serve user product gateway``: a deployable gateway process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from pathlib import Path

import pytest

from ec_recommend.client import Client
from ec_recommend.platform.auth.provision import AuthSettings, provision_user_pool
from ec_recommend.runtime.local_aws import LocalAws, free_port

pytestmark = pytest.mark.asyncio


def _pool_env(local_aws: LocalAws, pool: AuthSettings) -> dict[str, str]:
    """This environment for a served gateway on ``pool``: no local broker, no profile."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not (name.startswith("EC_AWS_") or name == "EC_PROFILE")
    }
    env.update(
        {
            "EC_COGNITO_USER_POOL_ID": pool.user_pool_id,
            "EC_COGNITO_CLIENT_ID": pool.client_id,
            "EC_COGNITO_ENDPOINT_URL": local_aws.endpoint_url,
            "EC_COGNITO_REGION": local_aws.region,
            "EC_LOG_LEVEL": "WARNING",
        }
    )
    return env


async def test_serve_gateway_with_services_signs_up_logs_in_and_stops(
    local_aws: LocalAws, tmp_path: Path
) -> None:
    pool = await provision_user_pool(local_aws, f"serve-{uuid.uuid4().hex[:8]}")
    env = _pool_env(local_aws, pool)
    env.update({"EC_COGNITO_AUTO_CONFIRM": "true", "EC_GATEWAY_PORT": str(free_port())})
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ec_recommend.cli",
        "serve",
        "user",
        "product",
        "gateway",
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None
    try:
        ready = json.loads(await asyncio.wait_for(child.stdout.readline(), 60))
        url = ready["gateway_url"]
        async with Client(url) as api:
            assert await api.ready()
            await api.signup("served@example.com", "Passw0rd-served")
            await api.login("served@example.com", "Passw0rd-served")
            assert (await api.me())["email"] == "served@example.com"
            assert (await api.list_products()).total_items == 0
    finally:
        child.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(child.wait(), 30)
    assert code == 0


async def _start_gateway(
    env: dict[str, str], data_dir: Path
) -> tuple[asyncio.subprocess.Process, str]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ec_recommend.cli",
        "serve",
        "gateway",
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        env={**env, "EC_GATEWAY_PORT": str(free_port())},
    )
    assert child.stdout is not None
    ready = json.loads(await asyncio.wait_for(child.stdout.readline(), 60))
    return child, str(ready["gateway_url"])


async def test_two_gateway_processes_share_one_redis_budget(
    local_aws: LocalAws, tmp_path: Path
) -> None:
    from tests.conftest import REDIS_URL, require_service

    require_service(REDIS_URL, 6379, "Redis")
    pool = await provision_user_pool(local_aws, f"shared-{uuid.uuid4().hex[:8]}")
    env = _pool_env(local_aws, pool)
    env.update(
        {
            "EC_RATE_LIMIT_BACKEND": "redis",
            "EC_REDIS_URL": REDIS_URL,
            "EC_RATE_LIMIT_ANONYMOUS": "10",
            "EC_TRUSTED_PROXIES": "127.0.0.1",
        }
    )
    children = []
    try:
        for n in range(2):
            children.append(await _start_gateway(env, tmp_path / f"g{n}"))
        n = uuid.uuid4().int
        client_address = f"10.{n & 255}.{(n >> 8) & 255}.{(n >> 16) & 255}"
        statuses = []
        async with Client("http://unused", headers={"X-Forwarded-For": client_address}) as api:
            for i in range(12):
                api.base_url = children[i % 2][1]  # alternate between the two processes
                response = await api.request("GET", "/api/v1/openapi.json", check=False)
                statuses.append(response.status)
        assert statuses == [200] * 10 + [429, 429]
    finally:
        for child, _ in children:
            child.send_signal(signal.SIGTERM)
            await asyncio.wait_for(child.wait(), 30)


async def test_serve_gateway_with_workers_shares_the_port_and_stops_them(
    local_aws: LocalAws, tmp_path: Path
) -> None:
    import aiohttp

    pool = await provision_user_pool(local_aws, f"serve-{uuid.uuid4().hex[:8]}")
    env = _pool_env(local_aws, pool)
    env.update({"EC_COGNITO_AUTO_CONFIRM": "true", "EC_GATEWAY_PORT": str(free_port())})
    command = ["serve", "user", "product", "gateway", "--workers", "2"]
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ec_recommend.cli",
        *command,
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None
    try:
        ready = json.loads(await asyncio.wait_for(child.stdout.readline(), 60))
        url = ready["gateway_url"]
        pids = set()
        for _ in range(40):  # fresh connections: all on one process with probability 2**-39
            connector = aiohttp.TCPConnector(force_close=True)
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.get(f"{url}/healthz") as response,
            ):
                pids.add((await response.json())["pid"])
        assert len(pids) == 2 and child.pid in pids
        (worker,) = pids - {child.pid}
        async with Client(url) as api:  # the workers reach the services here over gRPC
            await api.signup("workers@example.com", "Passw0rd-served")
            await api.login("workers@example.com", "Passw0rd-served")
            assert (await api.me())["email"] == "workers@example.com"
    finally:
        child.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(child.wait(), 30)
    assert code == 0
    with pytest.raises(ProcessLookupError):  # stopped and reaped before its parent exited
        os.kill(worker, 0)
