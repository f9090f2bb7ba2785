"""The services a process can host, by name.

Each entry names a module with ``build(env)``: an async context manager that
opens what the service owns (its database, its clients) and yields its gRPC
handlers. Modules are imported only when a process hosts the service.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ec_recommend.config import SERVICE_NAMES, Config
from ec_recommend.platform.security.tls import GATEWAY
from ec_recommend.platform.shared import Shared

if TYPE_CHECKING:  # the command line reads these names before it imports what runs
    from ec_recommend.consumers.email import EmailSender
    from ec_recommend.platform.rpc.client import ClientFactory
    from ec_recommend.platform.storage import Database


@dataclass(frozen=True)
class ServiceEnv:
    """What a service gets from its process."""

    config: Config
    clients: ClientFactory
    # Databases with an outbox table (platform.events.outbox); the host runs
    # a relay for each: ``env.outboxes.append(db)`` in the service's build.
    outboxes: list[Database] = field(default_factory=list)
    # One SES sender for the consumers hosted together: the seller's notice and
    # the customer's confirmation of an order arrive together and share a call.
    email_sender: Shared[EmailSender] = field(default_factory=Shared)


class ServiceBuilder(Protocol):
    def __call__(self, env: ServiceEnv) -> AbstractAsyncContextManager[Sequence[object]]: ...


SERVICES: dict[str, str] = {
    "user": "ec_recommend.services.user.app",
    "product": "ec_recommend.services.product.app",
    "cart": "ec_recommend.services.cart.app",
    "order": "ec_recommend.services.order.app",
    "analytics": "ec_recommend.consumers.analytics.service",
    "seller": "ec_recommend.consumers.seller.service",
    "search": "ec_recommend.services.search.app",
    "recommendation": "ec_recommend.services.recommendation.app",
}


# Event consumers: name -> module with ``subscription(env)`` returning a
# ``platform.events.consumer.Subscription`` (or an async context manager
# yielding one, for consumers that own resources such as an SES client).
CONSUMERS: dict[str, str] = {
    "inventory": "ec_recommend.consumers.inventory",
    "notification": "ec_recommend.consumers.notification",
    "analytics": "ec_recommend.consumers.analytics.consumer",
    "seller": "ec_recommend.consumers.seller.consumer",
    "search-indexer": "ec_recommend.consumers.search",
    "recommendation-updater": "ec_recommend.consumers.recommendation",
    "cache-invalidation": "ec_recommend.consumers.cache_invalidation",
}


def certificate_names() -> list[str]:
    """Everyone who needs a certificate: the gateway, services and consumers."""
    return list(dict.fromkeys([GATEWAY, *SERVICE_NAMES, *SERVICES, *CONSUMERS]))


def available_services() -> list[str]:
    return list(SERVICES)


def builder(name: str) -> ServiceBuilder:
    try:
        module = importlib.import_module(SERVICES[name])
    except KeyError:
        raise ValueError(f"unknown service {name!r}; choose from {', '.join(SERVICES)}") from None
    build: ServiceBuilder = module.build
    return build
