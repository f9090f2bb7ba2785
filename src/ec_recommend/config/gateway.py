"""The REST gateway: where it listens, body limit, rate limits, proxies."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from ec_recommend.config.values import ConfigError, Section


@dataclass(frozen=True)
class GatewayConfig:
    """The REST gateway: where it listens, body limit, rate limits, proxies.

    ``rate_limit_backend`` is ``memory`` (one process) or ``redis`` (shared by
    every gateway using ``redis_url``). ``trusted_proxies`` are addresses or
    CIDRs whose ``X-Forwarded-For`` is believed.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 256 * 1024
    rate_limit_backend: str = "memory"
    redis_url: str | None = None
    rate_limit_anonymous: int = 100
    rate_limit_authenticated: int = 1000
    rate_limit_seller: int = 5000
    rate_limit_window: float = 60.0
    trusted_proxies: tuple[str, ...] = ()
    # Every API request's time budget; a client may ask for less with
    # X-Request-Timeout. The deadline travels on every gRPC hop behind it.
    request_timeout: float = 15.0
    # A request's head must arrive within this many seconds of the connection
    # opening (or of the previous response), and its body within as many of
    # the head: slow or idle clients cannot hold connections open.
    read_timeout: float = 30.0


def gateway_config(section: Section) -> GatewayConfig:
    """``gateway:`` file section and ``EC_GATEWAY_*``/``EC_RATE_LIMIT_*`` variables."""
    backend = str(section.pick("rate_limit_backend", "EC_RATE_LIMIT_BACKEND", "memory"))
    if backend not in ("memory", "redis"):
        raise ConfigError(f"gateway.rate_limit_backend: expected memory or redis, got {backend!r}")
    redis_url = section.pick("redis_url", "EC_REDIS_URL", None) or None
    if backend == "redis" and not redis_url:
        raise ConfigError("gateway.redis_url: required with the redis rate-limit backend")
    return GatewayConfig(
        host=str(section.pick("host", "EC_GATEWAY_HOST", "127.0.0.1")),
        port=section.count("port", "EC_GATEWAY_PORT", 8080, allow_zero=True),
        max_body_bytes=section.count("max_body_bytes", "EC_GATEWAY_MAX_BODY_BYTES", 256 * 1024),
        rate_limit_backend=backend,
        redis_url=redis_url,
        rate_limit_anonymous=section.count("rate_limit_anonymous", "EC_RATE_LIMIT_ANONYMOUS", 100),
        rate_limit_authenticated=section.count(
            "rate_limit_authenticated", "EC_RATE_LIMIT_AUTHENTICATED", 1000
        ),
        rate_limit_seller=section.count("rate_limit_seller", "EC_RATE_LIMIT_SELLER", 5000),
        rate_limit_window=section.seconds("rate_limit_window", "EC_RATE_LIMIT_WINDOW", 60.0),
        trusted_proxies=_trusted_proxies(section.pick("trusted_proxies", "EC_TRUSTED_PROXIES", ())),
        request_timeout=section.seconds("request_timeout", "EC_GATEWAY_REQUEST_TIMEOUT", 15.0),
        read_timeout=section.seconds("read_timeout", "EC_GATEWAY_READ_TIMEOUT", 30.0),
    )


def _trusted_proxies(proxies: Any) -> tuple[str, ...]:
    """A list, or a comma-separated string, of addresses or CIDRs."""
    if isinstance(proxies, str):
        proxies = [p for p in proxies.split(",") if p.strip()]
    for proxy in proxies:
        try:
            ipaddress.ip_network(str(proxy).strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"gateway.trusted_proxies: not an address or CIDR: {proxy!r}"
            ) from None
    return tuple(str(p).strip() for p in proxies)
