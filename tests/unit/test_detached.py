"""Detached work finishes although its caller is cancelled; drain waits for it."""

from __future__ import annotations

import asyncio

import pytest

from ec_recommend.platform.detached import Detached

pytestmark = pytest.mark.asyncio


async def test_the_work_outlives_its_cancelled_caller() -> None:
    detached = Detached("test")
    started, proceed = asyncio.Event(), asyncio.Event()
    done: list[str] = []

    async def work() -> str:
        started.set()
        await proceed.wait()
        done.append("committed")
        return "order"

    caller = asyncio.create_task(detached.run(work()))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert len(detached) == 1  # still running
    proceed.set()
    await detached.drain(timeout=5)
    assert done == ["committed"] and len(detached) == 0


async def test_the_caller_gets_the_result_or_the_error() -> None:
    detached = Detached("test")

    async def fail() -> None:
        raise LookupError("no such order")

    async def succeed() -> int:
        return 7

    assert await detached.run(succeed()) == 7
    with pytest.raises(LookupError):
        await detached.run(fail())


async def test_drain_cancels_what_outlasts_it() -> None:
    detached = Detached("test")
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    caller = asyncio.create_task(detached.run(forever()))
    await started.wait()
    caller.cancel()
    await detached.drain(timeout=0)
    assert len(detached) == 0
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_keyed_work_is_found_while_it_runs_and_runs_once_per_key() -> None:
    detached = Detached("payment")
    started, proceed = asyncio.Event(), asyncio.Event()

    async def attempt() -> str:
        started.set()
        await proceed.wait()
        return "paid"

    first = asyncio.create_task(detached.run(attempt(), key="order-1"))
    await started.wait()
    assert detached.running("order-1") is not None
    assert detached.running("order-2") is None
    with pytest.raises(RuntimeError, match="already running"):
        await detached.run(attempt(), key="order-1")
    proceed.set()
    assert await first == "paid"
    assert detached.running("order-1") is None
