"""What a gateway worker process under test imports: a setup with the static verifier."""

from __future__ import annotations

from collections.abc import Sequence

from ec_recommend.config import Config
from ec_recommend.edge.gateway.app import GatewaySetup
from tests.integration.gateway.conftest import StaticVerifier, _verifier


def static_setup(config: Config, services: Sequence[str]) -> GatewaySetup:
    """Tokens from conftest.ACCOUNTS; the product cache on (the parent invalidates it)."""
    verifier = StaticVerifier()
    return GatewaySetup(
        config=config,
        verifier=lambda: _verifier(verifier),
        services=tuple(services),
        product_cache=True,
    )
