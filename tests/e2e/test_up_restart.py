"""A second ``up`` in one data dir: the demo accounts keep their ids.

``up`` seeds moto's random ids by the data dir's tag and creates the demo
accounts right after the pool, before anything else draws on those ids;
its start runs steps side by side (services beside the broker's
provisioning), and this checks that nothing has come to draw in between:
the same pool, app client and subjects, so the users rows (keyed by
subject) still belong to the accounts that log in.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ec_recommend.client import Client
from ec_recommend.runtime.demo import DEMO_USERS
from ec_recommend.runtime.local_system import DEMO_PASSWORD
from tests.e2e.conftest import up_process


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return claims


async def _identities(gateway_url: str) -> dict[str, tuple[str, str]]:
    """Each demo account's (token subject, user id the gateway resolves it to)."""
    found: dict[str, tuple[str, str]] = {}
    for _subject, email, _name in DEMO_USERS:
        client = Client(gateway_url)
        try:
            tokens = await client.login(email, DEMO_PASSWORD)
            me = await client.me()
        finally:
            await client.close()
        found[email] = (str(_claims(tokens.id_token)["sub"]), str(me["id"]))
    return found


@pytest.mark.asyncio
async def test_demo_accounts_keep_their_ids_across_two_starts_in_one_data_dir(
    tmp_path: Path,
) -> None:
    starts = []
    for _ in range(2):
        with up_process(tmp_path) as running:
            pool = (
                running.endpoints["cognito_user_pool_id"],
                running.endpoints["cognito_client_id"],
            )
            starts.append((pool, await _identities(running.gateway_url)))
    (first_pool, first), (second_pool, second) = starts
    assert second_pool == first_pool
    assert second == first
    assert len({subject for subject, _user in first.values()}) == len(DEMO_USERS)
