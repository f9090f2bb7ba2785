"""PendingDeletes: done messages' receipts share DeleteMessageBatch calls (no I/O)."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ec_recommend.platform.events.deletes import PendingDeletes, delete_messages
from tests.conftest import wait_for

pytestmark = pytest.mark.asyncio

NEVER = 600.0  # a timer that does not expire within a test


class FakeSqs:
    """Records each DeleteMessageBatch's receipts; can fail or hang instead."""

    def __init__(self, fail: bool = False, hang: bool = False) -> None:
        self.deleted: list[list[str]] = []
        self.fail = fail
        self.hang = hang

    async def delete_message_batch(self, QueueUrl: str, Entries: list[Any]) -> dict[str, Any]:
        if self.hang:
            await asyncio.Event().wait()
        if self.fail:
            raise ClientError({"Error": {"Code": "ServiceUnavailable"}}, "DeleteMessageBatch")
        self.deleted.append([e["ReceiptHandle"] for e in Entries])
        return {}


def pending_deletes(sqs: FakeSqs, delay: float = NEVER) -> PendingDeletes:
    return PendingDeletes(partial(delete_messages, sqs, "url", "c"), "c", delay=delay)


def receipts(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


async def test_ten_receipts_leave_at_once_in_one_call() -> None:
    sqs = FakeSqs()
    deletes = pending_deletes(sqs)
    deletes.add(receipts("a", 4))
    deletes.add(receipts("b", 4))
    assert (deletes.pending, deletes.in_flight) == (8, 0)  # eight wait for more
    assert sqs.deleted == []
    deletes.add(receipts("c", 5))
    assert deletes.in_flight == 1  # the first ten left at once, without the timer
    await wait_for(lambda: sqs.deleted, timeout=5)
    # The three batches' first ten share one call; the other three wait.
    assert sqs.deleted == [receipts("a", 4) + receipts("b", 4) + receipts("c", 2)]
    assert deletes.pending == 3
    await deletes.close()
    assert sqs.deleted[1:] == [["c2", "c3", "c4"]]


async def test_fewer_than_ten_leave_together_when_the_timer_expires() -> None:
    sqs = FakeSqs()
    deletes = pending_deletes(sqs, delay=0.05)
    deletes.add(["a0", "a1"])
    deletes.add(["b0"])
    await wait_for(lambda: sqs.deleted, timeout=5)
    await wait_for(lambda: deletes.in_flight == 0, timeout=5)
    assert sqs.deleted == [["a0", "a1", "b0"]]
    assert deletes.pending == 0
    deletes.add(["c0"])  # the next receipt starts a timer of its own
    await wait_for(lambda: len(sqs.deleted) == 2, timeout=5)
    assert sqs.deleted[1] == ["c0"]


async def test_close_sends_what_is_pending_and_waits_for_the_calls() -> None:
    sqs = FakeSqs()
    deletes = pending_deletes(sqs)
    deletes.add(receipts("a", 13))
    await deletes.close()
    assert sqs.deleted == [receipts("a", 10), ["a10", "a11", "a12"]]
    assert (deletes.pending, deletes.in_flight) == (0, 0)


async def test_a_failed_call_is_logged_and_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sqs = FakeSqs(fail=True)
    deletes = pending_deletes(sqs)
    deletes.add(receipts("a", 3))
    with caplog.at_level(logging.WARNING):
        await deletes.close()
    assert "delete of 3 messages failed" in caplog.text
    assert (deletes.pending, deletes.in_flight) == (0, 0)


async def test_a_broken_delete_is_logged_and_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(receipts: Any) -> None:
        raise RuntimeError("a bug")

    deletes = PendingDeletes(broken, "c", delay=NEVER)
    deletes.add(receipts("a", 10))
    with caplog.at_level(logging.ERROR):
        await deletes.close()
    assert "delete of 10 messages failed" in caplog.text
    assert "a bug" in caplog.text


async def test_close_gives_up_on_calls_the_broker_does_not_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sqs = FakeSqs(hang=True)
    deletes = pending_deletes(sqs)
    deletes.add(receipts("a", 2))
    with caplog.at_level(logging.WARNING):
        await deletes.close(timeout=0.05)
    assert deletes.in_flight == 0
    assert "gave up on 1 delete calls" in caplog.text
