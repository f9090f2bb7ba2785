"""Per-tier request budgets (seed 7.2) with two interchangeable backends.

A budget is a fixed window that starts at a key's first request: ``limit``
requests, then 429 until the window ends. The in-process backend serves one
gateway; the Redis backend counts with one atomic script so several gateway
processes share each budget (a client gains nothing by spreading requests).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from ec_recommend.platform.rpc.context import Identity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tier:
    name: str
    limit: int
    window: float = 60.0


@dataclass(frozen=True)
class Tiers:
    anonymous: Tier = Tier("anonymous", 100)
    authenticated: Tier = Tier("authenticated", 1000)
    seller: Tier = Tier("seller", 5000)

    def pick(self, identity: Identity | None, client_address: str) -> tuple[Tier, str]:
        """The tier of a caller and the key its budget is counted under."""
        if identity is None:
            return self.anonymous, f"ip:{client_address}"
        if "seller" in identity.roles:
            return self.seller, f"user:{identity.user_id}"
        return self.authenticated, f"user:{identity.user_id}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: float  # seconds until the window ends

    def headers(self) -> dict[str, str]:
        reset = str(max(1, math.ceil(self.reset)))
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": reset,
        }
        if not self.allowed:
            headers["Retry-After"] = reset
        return headers


def _decision(count: int, tier: Tier, reset: float) -> Decision:
    return Decision(count <= tier.limit, tier.limit, max(0, tier.limit - count), reset)


class RateLimiter(Protocol):
    async def hit(self, tier: Tier, key: str) -> Decision: ...


class MemoryRateLimiter:
    """Budgets of one process."""

    def __init__(
        self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._windows: dict[str, tuple[float, int]] = {}
        self._max_keys = max_keys
        self._clock = clock

    async def hit(self, tier: Tier, key: str) -> Decision:
        now = self._clock()
        full_key = f"{tier.name}:{key}"
        ends, count = self._windows.get(full_key, (0.0, 0))
        if ends <= now:
            if len(self._windows) >= self._max_keys:
                self._prune(now)
            ends, count = now + tier.window, 0
        count += 1
        self._windows[full_key] = (ends, count)
        return _decision(count, tier, ends - now)

    def _prune(self, now: float) -> None:
        self._windows = {k: v for k, v in self._windows.items() if v[0] > now}


# INCR and PEXPIRE in one step: a window starts with its first request, everywhere.
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class RedisRateLimiter:
    """Budgets shared by every gateway using the same Redis.

    If Redis cannot be reached the request is let through (and logged): an
    outage of the limiter must not become an outage of the shop.
    """

    def __init__(self, redis: object, prefix: str = "ec:ratelimit:") -> None:
        from redis.asyncio import Redis

        assert isinstance(redis, Redis)
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_HIT_SCRIPT)

    async def hit(self, tier: Tier, key: str) -> Decision:
        from redis.exceptions import RedisError

        window_ms = int(tier.window * 1000)
        try:
            count, ttl = await self._script(
                keys=[f"{self._prefix}{tier.name}:{key}"], args=[window_ms]
            )
        except (RedisError, OSError) as exc:
            log.warning("rate limiter: redis unavailable, allowing request: %s", exc)
            return Decision(True, tier.limit, tier.limit, tier.window)
        return _decision(int(count), tier, int(ttl) / 1000)


@asynccontextmanager
async def open_rate_limiter(
    backend: str, redis_url: str | None, prefix: str = "ec:ratelimit:"
) -> AsyncIterator[RateLimiter]:
    if backend == "memory":
        yield MemoryRateLimiter()
        return
    if backend != "redis" or not redis_url:
        raise ValueError("the redis rate-limit backend needs a redis url")
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        yield RedisRateLimiter(client, prefix)
    finally:
        await client.aclose()
