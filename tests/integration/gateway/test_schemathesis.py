"""Schemathesis, with every check, against the served OpenAPI document.

The gateway runs with every service behind it (and a Cognito pool on moto
for /auth/*) on a real socket; schemathesis' CLI reads
``/api/v1/openapi.json`` and sends a bounded number of cases per operation,
signed in as a seller. Zero failures means: no 5xx, every response matches
its documented schema and headers, no schema-valid request is rejected, no
schema-invalid one is accepted, and undocumented methods get 405 with the
right ``Allow``. Cross-field rules the JSON Schema cannot say (min <= max)
are stated in the document as ``x-constraints``; the hooks file skips cases
that break them, read from the document, so no rule is repeated here.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from ec_recommend.config import AuthConfig
from ec_recommend.edge.gateway.app import GatewaySetup, create_app, serving
from ec_recommend.platform.auth.cognito import open_accounts
from ec_recommend.platform.auth.provision import provision_user_pool
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.runtime.host import host_services
from ec_recommend.runtime.local_aws import LocalAws
from tests.integration.gateway.conftest import StaticVerifier, _verifier, gateway_config

pytestmark = [pytest.mark.asyncio, pytest.mark.fuzz]

SERVICES = ("user", "product", "cart", "order", "search", "recommendation", "seller", "analytics")
# Cases per operation; EC_FUZZ_EXAMPLES raises it for a longer hunt.
MAX_EXAMPLES = int(os.environ.get("EC_FUZZ_EXAMPLES", "30"))
HOOKS_MODULE = "tests.integration.gateway.schemathesis_hooks"
ROOT = str(Path(__file__).resolve().parents[3])  # where ``tests`` is importable from


async def test_schemathesis_finds_nothing(tmp_path: Path, local_aws: LocalAws) -> None:
    config = gateway_config(tmp_path)
    pool = await provision_user_pool(local_aws, f"st-{uuid.uuid4().hex[:8]}")
    auth = pool.apply(AuthConfig(auto_confirm=True, allow_seller_signup=True))
    verifier = StaticVerifier()
    async with AsyncExitStack() as stack:
        clients = await stack.enter_async_context(
            ClientFactory({}, pool_size=1, timeout=config.rpc.default_timeout)
        )
        await stack.enter_async_context(host_services(config, SERVICES, clients=clients))
        app = create_app(
            GatewaySetup(
                config=config,
                verifier=lambda: _verifier(verifier),
                accounts=lambda: open_accounts(auth),
                clients=clients,
                services=SERVICES,
            )
        )
        url = await stack.enter_async_context(serving(app, "127.0.0.1", 0))
        report = tmp_path / "schemathesis.txt"
        with report.open("wb") as out:
            child = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("st")),
                "run",
                f"{url}/api/v1/openapi.json",
                *("--checks", "all"),
                *("--max-examples", str(MAX_EXAMPLES)),
                *("--phases", "examples,coverage,fuzzing"),
                *("--seed", "12"),
                # one worker: schemathesis parses source in its worker threads, and
                # CPython 3.11's ast is not thread-safe ("AST constructor recursion
                # depth mismatch", a runtime error of the tool, not of the gateway)
                *("--workers", "1"),
                *("--header", "Authorization: Bearer seller-a"),
                # deactivating the account would leave every later case a 401
                *("--exclude-operation-id", "deactivate_me"),
                "--no-color",
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=tmp_path,  # its cache (.schemathesis/) stays out of the work tree
                env={**os.environ, "SCHEMATHESIS_HOOKS": HOOKS_MODULE, "PYTHONPATH": ROOT},
            )
            code = await asyncio.wait_for(child.wait(), timeout=600)
    output = report.read_text()
    print(output)
    assert code == 0, output[-6000:]
