"""Every mesh test runs over each transport between processes (``rpc_transport``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _each_transport(rpc_transport: str) -> str:
    return rpc_transport
