"""The anonymous tier: 100 requests a minute per client address."""

from __future__ import annotations

import pytest

from ec_recommend import client as api
from tests.e2e.conftest import System, fresh_address

pytestmark = pytest.mark.asyncio


async def test_101st_anonymous_request_in_a_minute_is_429(system: System) -> None:
    address = fresh_address()
    caller = system.anonymous(address)
    for n in range(100):
        await caller.list_products(page_size=1)
        assert caller.last is not None
        assert caller.last.headers["RateLimit-Limit"] == "100"
        assert caller.last.headers["RateLimit-Remaining"] == str(99 - n)
    with pytest.raises(api.RateLimited) as caught:
        await caller.list_products(page_size=1)
    assert caught.value.status == 429
    assert 1 <= caught.value.retry_after <= 60
    assert caught.value.headers["RateLimit-Remaining"] == "0"
    # /auth/* counts against the same anonymous budget
    with pytest.raises(api.RateLimited):
        await caller.login("someone@example.com", "Whatever-1")
    # another address, and an authenticated caller, are unaffected
    assert (await system.anonymous().list_products(page_size=1)).page_size == 1
    customer = await system.customer()
    await customer.me()
    assert customer.last is not None and customer.last.headers["RateLimit-Limit"] == "1000"
