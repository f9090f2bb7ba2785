"""Batched SQS deletes: a handled message's receipt waits a moment for company."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)


class DeleteBatcher:
    """Collects receipt handles and deletes them with DeleteMessageBatch (up to 10).

    A receipt waits at most ``linger`` seconds for others to join its batch.
    A failed delete is only logged: the message comes back after its
    visibility timeout and the consumer's inbox turns it into a no-op.
    """

    def __init__(self, sqs: Any, name: str, *, linger: float = 0.02) -> None:
        self.sqs = sqs
        self.name = name
        self.linger = linger
        self.queue_url = ""
        self._receipts: asyncio.Queue[str] = asyncio.Queue()

    def add(self, receipt: str) -> None:
        self._receipts.put_nowait(receipt)

    async def flush(self, timeout: float) -> bool:
        """Wait until every added receipt was sent; False if that took too long."""
        try:
            await asyncio.wait_for(self._receipts.join(), timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._receipts.get()]
            deadline = loop.time() + self.linger
            while len(batch) < 10:
                if not self._receipts.empty():
                    batch.append(self._receipts.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._receipts.get(), remaining))
                except TimeoutError:
                    break
            try:
                await self._delete(batch)
            finally:
                for _ in batch:
                    self._receipts.task_done()

    async def _delete(self, receipts: list[str]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts)]
        try:
            response = await self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except (BotoCoreError, ClientError, OSError) as exc:
            log.warning("%s: delete of %d messages failed (%s)", self.name, len(entries), exc)
            return
        for failure in response.get("Failed", []):
            log.warning("%s: delete failed: %s", self.name, failure)
