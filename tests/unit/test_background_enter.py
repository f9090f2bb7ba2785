"""BackgroundEnter: entered in a task, exited from the stack where it was handed over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import pytest

from ec_recommend.runtime.background_enter import BackgroundEnter
from tests.conftest import wait_for


def recorder(
    events: list[str], name: str, entered: asyncio.Event | None = None
) -> AbstractAsyncContextManager[str]:
    @asynccontextmanager
    async def manager() -> AsyncIterator[str]:
        events.append(f"enter {name}")
        if entered is not None:
            await entered.wait()
        try:
            yield name
        finally:
            events.append(f"exit {name}")

    return manager()


@pytest.mark.asyncio
async def test_it_exits_first_when_handed_over_last_although_entered_first() -> None:
    events: list[str] = []
    async with AsyncExitStack() as stack:
        gateway = BackgroundEnter(recorder(events, "gateway"), name="t")
        stack.push_async_callback(gateway.abandon)
        await stack.enter_async_context(recorder(events, "consumers"))
        assert await gateway.handover(stack) == "gateway"
    assert events[-2:] == ["exit gateway", "exit consumers"]
    assert events.count("exit gateway") == 1


@pytest.mark.asyncio
async def test_a_start_that_fails_before_the_handover_exits_what_was_entered() -> None:
    events: list[str] = []
    with pytest.raises(RuntimeError):
        async with AsyncExitStack() as stack:
            gateway = BackgroundEnter(recorder(events, "gateway"), name="t")
            stack.push_async_callback(gateway.abandon)
            await wait_for(lambda: events == ["enter gateway"], timeout=5)  # entered in full
            raise RuntimeError("consumers failed")
    assert events == ["enter gateway", "exit gateway"]


@pytest.mark.asyncio
async def test_a_start_that_fails_while_it_enters_stops_the_entering() -> None:
    events: list[str] = []
    never = asyncio.Event()
    with pytest.raises(RuntimeError):
        async with AsyncExitStack() as stack:
            gateway = BackgroundEnter(recorder(events, "gateway", never), name="t")
            stack.push_async_callback(gateway.abandon)
            await wait_for(lambda: events == ["enter gateway"], timeout=5)  # it waits in there
            raise RuntimeError("consumers failed")
    assert events == ["enter gateway"]  # cancelled while entering: nothing to exit
