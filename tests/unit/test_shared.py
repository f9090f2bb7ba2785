"""A resource shared by the users of a process: opened once, closed after the last."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from ec_recommend.platform.shared import Shared

pytestmark = pytest.mark.asyncio


class Opener:
    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[str]:
        self.opened += 1
        try:
            yield f"resource {self.opened}"
        finally:
            self.closed += 1


async def test_users_share_one_resource_closed_after_the_last() -> None:
    shared: Shared[str] = Shared()
    opener = Opener()
    async with shared.use(opener) as first:
        async with shared.use(opener) as second:
            assert first == second == "resource 1"
            assert shared.users == 2
        assert (opener.opened, opener.closed) == (1, 0)  # the first user still has it
    assert (opener.opened, opener.closed) == (1, 1)
    async with shared.use(opener) as again:
        assert again == "resource 2"  # opened afresh after the last user left


async def test_a_resource_that_fails_to_open_leaves_nothing_behind() -> None:
    shared: Shared[str] = Shared()

    @asynccontextmanager
    async def broken() -> AsyncIterator[str]:
        raise ConnectionError("no SES")
        yield "never"

    with pytest.raises(ConnectionError):
        async with shared.use(broken):
            pass
    opener = Opener()
    async with shared.use(opener) as resource:
        assert resource == "resource 1" and shared.users == 1
