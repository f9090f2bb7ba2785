"""An SQS queue subscribed to the topics carrying pushed events, and its poller.

Used two ways: a queue of one's own per gateway process (``SqsFanout``) and
one queue shared by every gateway that relays into Redis (``RedisFanout``).
Subscriptions use raw delivery and a filter policy naming only the pushed
event types, so the queue carries nothing the gateway would drop; with
``leave_out_origin`` the policy also drops what that process's relays
published (its gateway hears those in-process: ``published_here``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ec_recommend.config import EventsConfig
from ec_recommend.edge.realtime.messages import PUSHED_EVENTS
from ec_recommend.platform.events.aws import prefixed, topic_arns
from ec_recommend.platform.events.deletes import DELETE_DELAY, PendingDeletes, delete_messages
from ec_recommend.platform.events.published_here import ORIGIN
from ec_recommend.platform.events.topology import Topology
from ec_recommend.platform.events.worker import receive_delay
from ec_recommend.platform.retry import Backoff, with_retry

log = logging.getLogger(__name__)

OnBodies = Callable[[list[str]], Awaitable[None]]
_BATCH = 10  # ReceiveMessage's most
_BACKOFF = Backoff(initial_delay=0.1, max_delay=5.0)
_QUEUE_GONE = "AWS.SimpleQueueService.NonExistentQueue"
_CLOSE_TIMEOUT = 5.0  # at a stop, for the deletes still waiting


class TopicsMissing(RuntimeError):
    """The topics to subscribe to are not there (yet): not provisioned, or a broker restarts."""


def pushed_routes(topology: Topology) -> dict[str, list[str]]:
    """Topic name -> the pushed event types it carries."""
    routes: dict[str, list[str]] = {}
    for topic in topology.topics:
        events = sorted(e for e in topic.events if e in PUSHED_EVENTS)
        if events:
            routes[topic.name] = events
    return routes


def filter_policy(events: list[str], leave_out_origin: str | None = None) -> dict[str, Any]:
    """The subscription's filter: these event types, and from any origin but the one left out.

    A message without the origin attribute passes: only relays that a
    gateway hears in-process mark theirs.
    """
    policy: dict[str, Any] = {"type": events}
    if leave_out_origin is not None:
        # Values of one key are alternatives. "exists" first: moto (the local
        # broker) gives up on a message at the first rule needing an
        # attribute the message lacks, instead of trying the next one.
        policy[ORIGIN] = [{"exists": False}, {"anything-but": [leave_out_origin]}]
    return policy


def _queue_policy(queue_arn: str, topics: list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topics}},
                }
            ],
        }
    )


class QueueFeed:
    """Create (or find) queue ``name``, subscribe it, poll it into ``on_bodies``.

    After a partial batch the next receive waits the consumers' linger
    (``consumer_batch_linger``), as a consumer's does (``receive_delay``):
    under a steady trickle of pushes the feed then receives up to ten at a
    time, not one or two, for at most the linger more latency; after an
    empty receive (idle) it does not wait. Handed-over messages' receipts
    wait up to ``delete_delay`` to share a DeleteMessageBatch with the next
    receives' (``PendingDeletes``, as a consumer's do); a stop sends what
    waits. A delete lost is a push delivered again after the visibility
    timeout.
    """

    def __init__(
        self,
        sqs: Any,
        sns: Any,
        config: EventsConfig,
        topology: Topology,
        name: str,
        *,
        retention: int,
        tags: Mapping[str, str] | None = None,
        wait_seconds: int = 5,
        delete_delay: float = DELETE_DELAY,
        leave_out_origin: str | None = None,
    ) -> None:
        self.sqs = sqs
        self.sns = sns
        self.config = config
        self.topology = topology
        self.name = prefixed(config, name)
        self.retention = retention
        self.tags = dict(tags or {})
        self.wait_seconds = wait_seconds
        self.delete_delay = delete_delay
        self.leave_out_origin = leave_out_origin
        self.received = 0  # messages, over the feed's life
        self.url = ""
        self.arn = ""
        self.subscriptions: list[str] = []
        self._made = False  # queue, policy and every subscription in place

    async def create(self) -> None:
        routes = pushed_routes(self.topology)
        arns = await topic_arns(self.sns, self.config)
        missing = sorted(set(routes) - set(arns))
        if missing:
            raise TopicsMissing(f"topics {missing} do not exist; run ec-recommend provision")
        created = await self.sqs.create_queue(
            QueueName=self.name,
            Attributes={"MessageRetentionPeriod": str(self.retention)},
            tags=self.tags,
        )
        self.url = str(created["QueueUrl"])
        attributes = await self.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["QueueArn"]
        )
        self.arn = str(attributes["Attributes"]["QueueArn"])
        await self.sqs.set_queue_attributes(
            QueueUrl=self.url,
            Attributes={"Policy": _queue_policy(self.arn, sorted(arns[t] for t in routes))},
        )
        self.subscriptions.clear()  # subscribing again answers the same ARNs
        for topic, events in routes.items():
            response = await self.sns.subscribe(
                TopicArn=arns[topic],
                Protocol="sqs",
                Endpoint=self.arn,
                Attributes={
                    "RawMessageDelivery": "true",
                    "FilterPolicy": json.dumps(filter_policy(events, self.leave_out_origin)),
                },
                ReturnSubscriptionArn=True,
            )
            self.subscriptions.append(str(response["SubscriptionArn"]))
        self._made = True

    async def remove(self) -> None:
        """Unsubscribe and delete the queue (clean shutdown of an owned queue)."""
        for arn in self.subscriptions:
            try:
                await self.sns.unsubscribe(SubscriptionArn=arn)
            except (BotoCoreError, ClientError) as exc:
                log.warning("realtime: cannot unsubscribe %s: %s", arn, exc)
        self.subscriptions.clear()
        if self.url:
            try:
                await self.sqs.delete_queue(QueueUrl=self.url)
            except (BotoCoreError, ClientError) as exc:
                log.warning("realtime: cannot delete queue %s: %s", self.name, exc)

    async def poll(self, on_bodies: OnBodies) -> None:
        """Receive until cancelled; a batch is deleted once handed over."""
        deletes = PendingDeletes(self._delete, f"realtime {self.name}", self.delete_delay)
        try:
            while True:
                received = await with_retry(
                    lambda: self._receive_once(on_bodies, deletes),
                    is_retryable=_unavailable,
                    backoff=_BACKOFF,
                    max_attempts=None,
                    on_retry=self._on_retry,
                )
                delay = receive_delay(received, _BATCH, self.config.consumer_batch_linger)
                if delay:
                    await asyncio.sleep(delay)
        finally:
            await deletes.close(timeout=_CLOSE_TIMEOUT)

    async def _receive_once(self, on_bodies: OnBodies, deletes: PendingDeletes) -> int:
        """One receive handed over, its deletes queued; the number of messages it brought."""
        if not self._made:
            await self.create()  # the queue went with a restarted broker: make it again
        response = await self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=_BATCH, WaitTimeSeconds=self.wait_seconds
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        self.received += len(messages)
        try:
            await on_bodies([str(m["Body"]) for m in messages])
        except Exception:
            # not deleted: SQS hands the batch out again after the visibility timeout
            log.exception("realtime: handing over from %s failed", self.name)
            await asyncio.sleep(1.0)
            return 0
        deletes.add([str(m["ReceiptHandle"]) for m in messages])
        return len(messages)

    async def _delete(self, receipts: Sequence[str]) -> None:
        await delete_messages(self.sqs, self.url, self.name, receipts)

    def _on_retry(self, attempt: int, exc: Exception, delay: float) -> None:
        if (
            isinstance(exc, ClientError)
            and exc.response.get("Error", {}).get("Code") == _QUEUE_GONE
        ):
            self._made = False
        if attempt == 1 or attempt % 20 == 0:
            log.warning("realtime: receiving from %s failed: %s", self.name, exc)


def _unavailable(exc: Exception) -> bool:
    return isinstance(exc, (BotoCoreError, ClientError, OSError, TopicsMissing))
