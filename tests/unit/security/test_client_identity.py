"""Whose certificate a call presents: the caller's own, never the gateway's."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from ec_recommend.config import TlsConfig
from ec_recommend.platform.events.consumer import Subscription
from ec_recommend.platform.events.runner import start_worker
from ec_recommend.platform.events.worker import ConsumerWorker
from ec_recommend.platform.security.identity import acting_as, current_actor
from ec_recommend.platform.security.tls import GATEWAY, ClientTls

CERTS = Path("/certs")


def _tls(*own: str) -> ClientTls:
    """A STRICT client whose certificate directory holds ``own``'s certificates."""
    tls = ClientTls(
        TlsConfig(
            mode="STRICT",
            ca=CERTS / "ca.crt",
            cert=CERTS / "gateway.crt",
            key=CERTS / "gateway.key",
            cert_dir=CERTS,
        ),
        GATEWAY,
    )
    for name in own:  # as if cert_dir held <name>.crt (a unit test reads no files)
        tls._identities[name] = name
    return tls


class _Worker:
    """Stands in for a ConsumerWorker: ``run`` records who its calls present."""

    def __init__(self, tls: ClientTls, subscription: Subscription) -> None:
        self.tls = tls
        self.subscription = subscription
        self.name = subscription.name
        self.presented: str | None = "nothing yet"

    async def run(self) -> None:
        self.presented = self.tls.identity_for(current_actor())


def _subscription(name: str, identity: str = "") -> Subscription:
    return Subscription(
        name=name, queue="q", database=name, migrations=(), handlers={}, identity=identity
    )


@pytest.mark.asyncio
async def test_a_consumer_calls_with_its_own_certificate() -> None:
    tls = _tls("inventory")
    worker = _Worker(tls, _subscription("inventory-subscription", identity="inventory"))
    await start_worker(cast(ConsumerWorker, worker))
    assert worker.presented == "inventory"
    # outside the consumer, the process still presents the gateway's
    assert tls.identity_for(current_actor()) == GATEWAY


@pytest.mark.asyncio
async def test_without_a_registered_name_the_subscription_name_is_the_identity() -> None:
    worker = _Worker(_tls("seller"), _subscription("seller"))
    await start_worker(cast(ConsumerWorker, worker))
    assert worker.presented == "seller"


def test_an_actor_without_its_own_certificate_presents_the_process_certificate() -> None:
    tls = ClientTls(TlsConfig(mode="STRICT", ca=CERTS / "ca.crt", cert=CERTS / "inventory.crt"))
    tls._identities["inventory"] = None  # as if cert_dir had no inventory.crt
    with acting_as("inventory"):
        # None: the process's own tls.certificates.cert, never a default name
        assert tls.identity_for(current_actor()) is None
    assert tls.identity_for(None) is None
