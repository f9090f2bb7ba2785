"""Typed keys for what the app and each request carry, and the app's state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from ec_recommend.config import GatewayConfig
from ec_recommend.edge.gateway.client_address import ClientAddressResolver
from ec_recommend.edge.gateway.identity import IdentityResolver
from ec_recommend.edge.gateway.ratelimit import RateLimiter, Tiers
from ec_recommend.edge.gateway.request import ACTIVITY
from ec_recommend.edge.gateway.routes import RouteTable
from ec_recommend.platform.cache import ProductCache
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.context import Identity

__all__ = ["ACTIVITY", "GATEWAY", "IDENTITY", "PRODUCT_CACHE", "REQUEST_ID", "Gateway"]

if TYPE_CHECKING:
    from ec_recommend.edge.gateway.accounts import Accounts


@dataclass
class Gateway:
    """Everything handlers and middleware share; built in the app's cleanup_ctx."""

    clients: ClientFactory
    identities: IdentityResolver
    limiter: RateLimiter
    tiers: Tiers
    addresses: ClientAddressResolver
    routes: RouteTable
    accounts: Accounts | None
    services: Sequence[str] = ()
    ready: bool = True
    request_timeout: float = 15.0  # seconds; config.gateway.request_timeout
    extras: dict[str, object] = field(default_factory=dict)


GATEWAY = web.AppKey("ec_gateway", Gateway)
GATEWAY_CONFIG = web.AppKey("ec_gateway_config", GatewayConfig)  # set when the app is made
REQUEST_ID = web.RequestKey("ec_request_id", str)
IDENTITY = web.RequestKey("ec_identity", Identity)  # absent for anonymous callers
PRODUCT_CACHE = web.AppKey("ec_product_cache", ProductCache)  # platform/cache.py
