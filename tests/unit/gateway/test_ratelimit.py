"""Rate-limit tiers, windows and headers (in-process backend)."""

from __future__ import annotations

import pytest

from ec_recommend.edge.gateway.ratelimit import MemoryRateLimiter, Tier, Tiers
from ec_recommend.platform.rpc.context import Identity

pytestmark = pytest.mark.asyncio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_limit_then_429_headers_until_the_window_ends() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)
    tier = Tier("anonymous", 100, 60.0)
    for n in range(100):
        decision = await limiter.hit(tier, "ip:1.2.3.4")
        assert decision.allowed
        assert decision.headers()["RateLimit-Remaining"] == str(99 - n)
    clock.now += 20
    denied = await limiter.hit(tier, "ip:1.2.3.4")
    assert not denied.allowed
    headers = denied.headers()
    assert headers["RateLimit-Limit"] == "100"
    assert headers["RateLimit-Remaining"] == "0"
    assert headers["Retry-After"] == headers["RateLimit-Reset"] == "40"
    assert (await limiter.hit(tier, "ip:5.6.7.8")).allowed  # budgets are per key
    clock.now += 40
    assert (await limiter.hit(tier, "ip:1.2.3.4")).allowed  # a new window


async def test_tiers_pick_budget_and_key() -> None:
    tiers = Tiers()
    assert tiers.pick(None, "1.2.3.4") == (tiers.anonymous, "ip:1.2.3.4")
    customer = Identity(user_id="u1", roles=frozenset({"customer"}))
    seller = Identity(user_id="u2", roles=frozenset({"seller"}), seller_id="s")
    assert tiers.pick(customer, "1.2.3.4") == (tiers.authenticated, "user:u1")
    assert tiers.pick(seller, "1.2.3.4") == (tiers.seller, "user:u2")
    assert (tiers.anonymous.limit, tiers.authenticated.limit, tiers.seller.limit) == (
        100,
        1000,
        5000,
    )


async def test_old_windows_are_pruned_when_full() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(max_keys=10, clock=clock)
    tier = Tier("anonymous", 1, 1.0)
    for n in range(10):
        await limiter.hit(tier, f"k{n}")
    clock.now += 2
    assert (await limiter.hit(tier, "new")).allowed
    assert len(limiter._windows) == 1
