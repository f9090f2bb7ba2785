"""Dead-letter queue tooling: depths, peek, redrive to the source queue, purge."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ec_recommend.config import EventsConfig
from ec_recommend.platform.events.aws import queue_url
from ec_recommend.platform.events.topology import QueueSpec, Topology

_PEEK_VISIBILITY = 30  # seconds a peeked message is hidden before being returned


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    event_type: str
    event_id: str
    receive_count: int
    body: str

    def summary(self) -> str:
        return (
            f"{self.message_id}  type={self.event_type or '?'}  event={self.event_id or '?'}  "
            f"receives={self.receive_count}  {len(self.body)} bytes"
        )


def _letter(message: dict[str, Any]) -> DeadLetter:
    body = str(message.get("Body", ""))
    event_type = message.get("MessageAttributes", {}).get("type", {}).get("StringValue", "")
    event_id = ""
    try:
        raw = json.loads(body)
        if isinstance(raw, dict):
            event_type = event_type or str(raw.get("type", ""))
            event_id = str(raw.get("id", ""))
    except ValueError:
        pass
    count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "0"))
    return DeadLetter(str(message.get("MessageId", "")), event_type, event_id, count, body)


async def depths(sqs: Any, config: EventsConfig, topology: Topology) -> dict[str, int]:
    """Messages waiting in each queue's DLQ, by DLQ name."""
    result = {}
    for queue in topology.queues:
        url = await queue_url(sqs, config, queue.dlq)
        attrs = await sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        result[queue.dlq] = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
    return result


async def _take(sqs: Any, url: str, limit: int, visibility: int) -> list[dict[str, Any]]:
    """Receive up to ``limit`` messages; stops after an empty receive."""
    taken: list[dict[str, Any]] = []
    while len(taken) < limit:
        response = await sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, limit - len(taken)),
            WaitTimeSeconds=1,
            VisibilityTimeout=visibility,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        )
        batch = response.get("Messages", [])
        if not batch:
            break
        taken.extend(batch)
    return taken


async def peek(
    sqs: Any, config: EventsConfig, queue: QueueSpec, limit: int = 10
) -> list[DeadLetter]:
    """Read up to ``limit`` dead letters without removing them."""
    url = await queue_url(sqs, config, queue.dlq)
    messages = await _take(sqs, url, limit, _PEEK_VISIBILITY)
    for message in messages:
        await sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return [_letter(m) for m in messages]


async def redrive(
    sqs: Any, config: EventsConfig, queue: QueueSpec, limit: int | None = None
) -> int:
    """Move up to ``limit`` (default: all) dead letters back to the source queue."""
    dlq = await queue_url(sqs, config, queue.dlq)
    source = await queue_url(sqs, config, queue.name)
    moved = 0
    while limit is None or moved < limit:
        batch = await _take(sqs, dlq, min(10, (limit or 10**9) - moved), _PEEK_VISIBILITY)
        if not batch:
            break
        entries = [
            {
                "Id": str(i),
                "MessageBody": m["Body"],
                "MessageAttributes": _string_attributes(m.get("MessageAttributes", {})),
            }
            for i, m in enumerate(batch)
        ]
        sent = await sqs.send_message_batch(QueueUrl=source, Entries=entries)
        ok = {int(item["Id"]) for item in sent.get("Successful", [])}
        if ok:
            await sqs.delete_message_batch(
                QueueUrl=dlq,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": batch[i]["ReceiptHandle"]} for i in sorted(ok)
                ],
            )
        moved += len(ok)
        if len(ok) < len(batch):
            break  # what failed stays in the DLQ
    return moved


async def purge(sqs: Any, config: EventsConfig, queue: QueueSpec) -> None:
    await sqs.purge_queue(QueueUrl=await queue_url(sqs, config, queue.dlq))


def _string_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {"DataType": value["DataType"], "StringValue": value["StringValue"]}
        for name, value in attributes.items()
        if "StringValue" in value
    }
