"""The event queues as the operator console sees them: depths, redrive, purge.

One SQS client (aiobotocore, against moto locally) for the gateway's life;
the work itself is ``platform/events/dlq.py``, the same code behind
``ec-recommend events dlq``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from ec_recommend.config import EventsConfig
from ec_recommend.platform import errors
from ec_recommend.platform.events import dlq
from ec_recommend.platform.events.aws import aws_client, queue_url
from ec_recommend.platform.events.topology import QueueSpec, Topology, TopologyError

_DEPTH_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]


@dataclass(frozen=True)
class QueueDepth:
    name: str
    dlq: str
    subscriber: str
    messages: int
    in_flight: int
    dlq_messages: int

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dlq": self.dlq,
            "subscriber": self.subscriber,
            "messages": self.messages,
            "messages_in_flight": self.in_flight,
            "dlq_messages": self.dlq_messages,
        }


class QueueConsole:
    def __init__(self, sqs: Any, config: EventsConfig, topology: Topology) -> None:
        self._sqs = sqs
        self._config = config
        self._topology = topology

    def queue(self, name: str) -> QueueSpec:
        """The queue called ``name`` (or whose DLQ is): NotFound otherwise."""
        try:
            return self._topology.queue(name)
        except TopologyError:
            # The name is not echoed: it is whatever the client put in the path.
            raise errors.NotFound("no such queue (GET /api/v1/admin/queues lists them)") from None

    async def _attributes(self, name: str) -> dict[str, str]:
        url = await queue_url(self._sqs, self._config, name)
        response = await self._sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=_DEPTH_ATTRIBUTES
        )
        return dict(response["Attributes"])

    async def _depth(self, queue: QueueSpec) -> QueueDepth:
        source, dead = await asyncio.gather(
            self._attributes(queue.name), self._attributes(queue.dlq)
        )
        return QueueDepth(
            name=queue.name,
            dlq=queue.dlq,
            subscriber=queue.subscriber,
            messages=int(source["ApproximateNumberOfMessages"]),
            in_flight=int(source["ApproximateNumberOfMessagesNotVisible"]),
            dlq_messages=int(dead["ApproximateNumberOfMessages"]),
        )

    async def depths(self) -> list[QueueDepth]:
        return list(await asyncio.gather(*(self._depth(q) for q in self._topology.queues)))

    async def redrive(self, name: str) -> int:
        """The queue's dead letters back to it; how many moved.

        At most as many as the DLQ held when asked: a poisoned message that
        its subscriber rejects at once is back in the DLQ within a second,
        and redriving "until empty" would chase it until the request times out.
        """
        queue = self.queue(name)
        waiting = int((await self._attributes(queue.dlq))["ApproximateNumberOfMessages"])
        if waiting == 0:
            return 0
        return await dlq.redrive(self._sqs, self._config, queue, waiting)

    async def purge(self, name: str) -> None:
        """Drop the queue's dead letters."""
        await dlq.purge(self._sqs, self._config, self.queue(name))


@asynccontextmanager
async def open_queue_console(
    config: EventsConfig, topology: Topology
) -> AsyncIterator[QueueConsole]:
    async with aws_client("sqs", config) as sqs:
        yield QueueConsole(sqs, config, topology)
