"""Acknowledging a batch: one DeleteMessageBatch, one ChangeMessageVisibilityBatch.

A failed call is only logged: an undeleted message comes back after its
visibility timeout and the consumer's inbox turns it into a no-op; a message
whose visibility was not shortened comes back a little later than planned.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)

MAX_ENTRIES = 10  # per SQS batch call


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
