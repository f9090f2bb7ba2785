"""Acknowledging handled messages: DeleteMessageBatch and ChangeMessageVisibilityBatch.

Deletes are coalesced across received batches (``PendingDeletes``): a done
message's receipt waits at most ``DELETE_DELAY`` to share its call with
those of the next batches, up to 10 a call. Visibility changes are per batch
and immediate.

A failed call is only logged: an undeleted message comes back after its
visibility timeout and the consumer's inbox turns it into a no-op; a message
whose visibility was not shortened comes back a little later than planned.
A process killed with receipts still pending loses only those deletes, with
the same outcome: redelivery, then a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)

MAX_ENTRIES = 10  # per SQS batch call

# How long a done message's receipt may wait for others to share its delete.
# Under checkout load each queue receives every few tenths of a second, ~8
# messages at a time: a wait of a few receives lets most calls carry 10 (0.25 s
# saved a few hundredths of a call per order, 1 s most of what ten a call
# allows). It adds no event latency (the message was handled before its receipt
# got here); a quiet queue pays one call per delivery, that much later. It must
# stay well under the visibility timeout, or a waiting message would be
# delivered again: the worker caps it at a quarter of its queue's.
DELETE_DELAY = 1.0


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + MAX_ENTRIES] for i in range(0, len(items), MAX_ENTRIES)]


async def delete_messages(sqs: Any, queue_url: str, name: str, receipts: Sequence[str]) -> None:
    """Delete handled messages (one call per 10)."""
    for chunk in _chunks(receipts):
        entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)]
        try:
            response = await sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        except (BotoCoreError, ClientError, OSError) as exc:
            log.warning("%s: delete of %d messages failed (%s)", name, len(entries), exc)
            continue
        for failure in response.get("Failed", []):
            log.warning("%s: delete failed: %s", name, failure)


class PendingDeletes:
    """Receipts of one queue's done messages, deleted ten to a call.

    ``add`` never waits: at 10 pending a call leaves at once; fewer wait for a
    timer started by the first of them (``delay``, settable until the first
    ``add``), then leave together.
    ``close`` sends whatever is pending and waits for every call in flight, so
    a clean stop leaves nothing undeleted. ``delete`` is one call for up to 10
    receipts that logs its own failures (``delete_messages``).
    """

    def __init__(
        self,
        delete: Callable[[Sequence[str]], Awaitable[None]],
        name: str,
        delay: float = DELETE_DELAY,
    ) -> None:
        self._delete = delete
        self._name = name
        self.delay = delay
        self._pending: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._calls: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    def add(self, receipts: Sequence[str]) -> None:
        """Queue done messages' receipts for deletion."""
        self._pending.extend(receipts)
        while len(self._pending) >= MAX_ENTRIES:
            self._send(self._pending[:MAX_ENTRIES])
            del self._pending[:MAX_ENTRIES]
        if not self._pending:
            self._stop_timer()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self.flush)

    def flush(self) -> None:
        """Send whatever is pending now, without waiting for the calls."""
        self._stop_timer()
        for chunk in _chunks(self._pending):
            self._send(chunk)
        self._pending = []

    async def close(self, timeout: float | None = None) -> None:
        """Send what is pending and wait until every call has returned.

        Calls still out after ``timeout`` (a broker that does not answer) are
        cancelled: their messages come back and are no-ops.
        """
        self.flush()
        if not self._calls:
            return
        _, late = await asyncio.wait(set(self._calls), timeout=timeout)
        for call in late:
            call.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)
            log.warning("%s: gave up on %d delete calls at shutdown", self._name, len(late))

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send(self, receipts: Sequence[str]) -> None:
        call = asyncio.create_task(self._call(list(receipts)), name=f"{self._name}-delete")
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)

    async def _call(self, receipts: list[str]) -> None:
        try:
            await self._delete(receipts)
        except Exception:
            # A bug, not a broker failure (those ``delete`` logs itself): the
            # messages come back and are no-ops, like any failed delete.
            log.exception("%s: delete of %d messages failed", self._name, len(receipts))


async def set_visibilities(
    sqs: Any, queue_url: str, name: str, timeouts: Sequence[tuple[str, int]]
) -> bool:
    """Set each (receipt, seconds) message's visibility (one call per 10); False on failure."""
    ok = True
    for chunk in _chunks(timeouts):
        entries = [
            {"Id": str(i), "ReceiptHandle": receipt, "VisibilityTimeout": seconds}
            for i, (receipt, seconds) in enumerate(chunk)
        ]
        try:
            response = await sqs.change_message_visibility_batch(
                QueueUrl=queue_url, Entries=entries
            )
        except (BotoCoreError, ClientError, OSError) as exc:
            log.warning("%s: cannot change visibility (%s)", name, exc)
            ok = False
            continue
        for failure in response.get("Failed", []):
            log.warning("%s: visibility change failed: %s", name, failure)
    return ok
