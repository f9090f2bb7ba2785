"""End-to-end: ``ec-recommend up`` as a subprocess, driven over HTTP.

``system`` (session-wide) gives the endpoints of one ``up`` process and makes
logged-in clients (closed at the end of each test): ``await system.customer()``,
``await system.seller()``, ``await system.admin()``, ``system.anonymous()``.
The gateway trusts 127.0.0.1 as a proxy here, and every client sends its own
``X-Forwarded-For`` address, so tests do not share the anonymous budget of
100 requests a minute (the rate-limit tests use that on purpose).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ec_recommend.client import Client

PASSWORD = "Passw0rd-e2e"
_addresses = itertools.count(1)


def fresh_address() -> str:
    n = next(_addresses)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


@dataclass(frozen=True)
class RunningSystem:
    endpoints: dict[str, Any]
    data_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def gateway_url(self) -> str:
        return str(self.endpoints["gateway_url"])


def _wait_ready(url: str, child: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            pytest.fail(f"ec-recommend up exited with {child.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"ec-recommend up was not ready within {timeout}s")


@contextmanager
def up_process(
    data_dir: Path, *extra_args: str, env: dict[str, str] | None = None
) -> Iterator[RunningSystem]:
    """``ec-recommend up`` in ``data_dir`` until the block ends, once it is ready."""
    environment = {
        **os.environ,
        "EC_TRUSTED_PROXIES": "127.0.0.1",
        "EC_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    command = [sys.executable, "-m", "ec_recommend.cli", "up", "--port", "0"]
    with (data_dir / "up.log").open("wb") as log:
        child = subprocess.Popen(
            [*command, *extra_args, "--data-dir", str(data_dir)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=environment,
        )
        try:
            endpoints_file = data_dir / "endpoints.json"
            deadline = time.monotonic() + 90
            while not endpoints_file.exists():
                if child.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"ec-recommend up did not start; see {data_dir / 'up.log'}")
                time.sleep(0.2)
            endpoints = json.loads(endpoints_file.read_text(encoding="utf-8"))
            _wait_ready(endpoints["gateway_url"], child, 60)
            yield RunningSystem(endpoints, data_dir, child)
        finally:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


@pytest.fixture(scope="session")
def running_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    with up_process(tmp_path_factory.mktemp("ec-up")) as running:
        yield running


@dataclass
class System:
    """Helpers over one running system; closes the clients it made."""

    running: RunningSystem
    clients: list[Client] = field(default_factory=list)

    @property
    def endpoints(self) -> dict[str, Any]:
        return self.running.endpoints

    @property
    def gateway_url(self) -> str:
        return self.running.gateway_url

    def anonymous(self, address: str | None = None) -> Client:
        client = Client(self.gateway_url, headers={"X-Forwarded-For": address or fresh_address()})
        self.clients.append(client)
        return client

    async def _account(self, role: str, email: str | None = None) -> Client:
        client = self.anonymous()
        email = email or f"{role}-{uuid.uuid4().hex[:12]}@example.com"
        await client.signup(email, PASSWORD, display_name=f"{role} {email[:6]}", role=role)
        await client.login(email, PASSWORD)
        return client

    async def customer(self, email: str | None = None) -> Client:
        return await self._account("customer", email)

    async def seller(self, email: str | None = None) -> Client:
        return await self._account("seller", email)

    async def admin(self) -> Client:
        """A customer account promoted to the admin group in Cognito, then logged in."""
        from aiobotocore.session import get_session

        client = self.anonymous()
        email = f"admin-{uuid.uuid4().hex[:12]}@example.com"
        await client.signup(email, PASSWORD, role="customer")
        async with get_session().create_client(
            "cognito-idp",
            region_name=self.endpoints["region"],
            endpoint_url=self.endpoints["aws_endpoint_url"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ) as cognito:
            await cognito.admin_add_user_to_group(
                UserPoolId=self.endpoints["cognito_user_pool_id"], Username=email, GroupName="admin"
            )
        await client.login(email, PASSWORD)
        return client

    async def close(self) -> None:
        clients, self.clients = self.clients, []
        for client in clients:
            await client.close()


@pytest.fixture(scope="session")
def system(running_system: RunningSystem) -> System:
    """The session's running system and its helpers (clients are closed after each test)."""
    return System(running_system)


@pytest_asyncio.fixture(autouse=True)
async def _close_system_clients(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    # clients live on the test's event loop: close them before that loop ends
    yield
    if "system" in request.fixturenames:
        await request.getfixturevalue("system").close()
