"""Checkout admission: a bounded queue with a short wait, then shedding."""

from __future__ import annotations

import asyncio

import pytest

from ec_recommend.platform import errors
from ec_recommend.services.order.admission import Admission, queue_wait


def test_the_wait_is_a_share_of_the_callers_budget() -> None:
    assert queue_wait(1.0, None) == 1.0
    assert queue_wait(1.0, 10.0) == 1.0
    assert queue_wait(1.0, 2.0) == 0.5
    assert queue_wait(1.0, -1.0) == 0.0


@pytest.mark.asyncio
async def test_a_free_slot_admits_at_once_and_is_given_back() -> None:
    admission = Admission(1, queue=0, wait=0.0)
    async with admission.slot():
        pass
    with pytest.raises(RuntimeError):
        async with admission.slot():
            raise RuntimeError("the checkout failed")
    async with admission.slot():  # both slots came back
        pass


@pytest.mark.asyncio
async def test_beyond_the_queue_a_checkout_is_shed_at_once() -> None:
    admission = Admission(1, queue=1, wait=60.0)
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with admission.slot():
            holding.set()
            await release.wait()

    async def queued() -> str:
        async with admission.slot():
            return "admitted"

    holder = asyncio.create_task(hold())
    await holding.wait()
    waiter = asyncio.create_task(queued())
    await asyncio.sleep(0)  # one step: the waiter queues on the semaphore
    assert admission.waiting == 1
    with pytest.raises(errors.ResourceExhausted) as shed:
        async with admission.slot():
            pass
    assert shed.value.details == {"reason": "overloaded", "retry_after": "1"}
    release.set()
    assert await waiter == "admitted"  # the queued one got the freed slot
    await holder
    assert admission.waiting == 0


@pytest.mark.asyncio
async def test_a_queued_checkout_waits_only_as_long_as_allowed() -> None:
    admission = Admission(1, queue=5, wait=60.0, retry_after=2)
    async with admission.slot():
        # The caller has no budget left to wait with: shed, not queued.
        with pytest.raises(errors.ResourceExhausted) as shed:
            async with admission.slot(remaining=0.0):
                pass
    assert shed.value.details["retry_after"] == "2"
    assert admission.waiting == 0
    async with admission.slot():
        pass
