"""The runtime behind ``consumer.Subscription``: one worker per queue.

See ``consumer`` for the guarantees. Receiving asks for at most as many
messages as the handlers plus one waiting batch can take; a waiting message's
visibility is extended from the moment it arrives, so prefetching never lets
it reappear. Deletes go out in batches of up to 10.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ec_recommend.config import EventsConfig
from ec_recommend.platform.events.aws import queue_url
from ec_recommend.platform.events.consumer import ConsumerStats, Subscription
from ec_recommend.platform.events.deletes import DeleteBatcher
from ec_recommend.platform.events.envelope import Event, EventError, UnknownEventType, decode
from ec_recommend.platform.events.inbox import claim
from ec_recommend.platform.retry import Backoff, RetriesExhausted, with_retry
from ec_recommend.platform.rpc.context import CallContext, call_scope
from ec_recommend.platform.storage import Database
from ec_recommend.platform.telemetry.messaging import handling_message, record_lag
from ec_recommend.platform.telemetry.tracing import record_failure

log = logging.getLogger(__name__)

_RECEIVE_LINGER = 0.02  # seconds to wait for more free slots before receiving
_BROKER_BACKOFF = Backoff(initial_delay=0.2, max_delay=10.0)  # a queue or broker not there yet
_STATUS = {"handled": "success", "duplicates": "duplicate", "ignored": "ignored"}


def _prefetch(config: EventsConfig) -> int:
    return min(10, config.consumer_concurrency)


class ConsumerWorker:
    """Consumes one subscription's queue until ``stop()``."""

    def __init__(
        self, subscription: Subscription, db: Database, sqs: Any, config: EventsConfig
    ) -> None:
        self.subscription = subscription
        self.db = db
        self.sqs = sqs
        self.config = config
        self.stats = ConsumerStats()
        self.queue_url = ""
        self.visibility_timeout = 30
        # Handlers run at most ``consumer_concurrency`` at once; one more batch
        # may wait, already received (and kept invisible), so the next receive
        # overlaps the handlers instead of following them.
        self._running = asyncio.Semaphore(config.consumer_concurrency)
        self._slots = asyncio.Semaphore(config.consumer_concurrency + _prefetch(config))
        self._inflight: dict[asyncio.Task[None], str] = {}  # task -> receipt handle
        self._deletes = DeleteBatcher(sqs, subscription.name)
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()

    @property
    def name(self) -> str:
        return self.subscription.name

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def stop(self) -> None:
        """Stop receiving; ``run`` then drains and returns."""
        self._stopping.set()

    async def run(self) -> None:
        deleter = asyncio.create_task(self._deletes.run(), name=f"{self.name}-deletes")
        try:
            if await self._resolve_queue():
                self._ready.set()
                await self._receive_loop()
        finally:
            self._ready.set()
            await self._drain()
            if not await self._deletes.flush(self.config.shutdown_grace):
                # Undeleted messages come back and the inbox makes them no-ops.
                log.warning("%s: pending deletes abandoned at shutdown", self.name)
            deleter.cancel()
            with suppress(asyncio.CancelledError):
                await deleter

    async def _resolve_queue(self) -> bool:
        """Find the queue (waiting while it is not provisioned); False if stopped first."""

        async def resolve() -> None:
            self.queue_url = await queue_url(self.sqs, self.config, self.subscription.queue)
            self._deletes.queue_url = self.queue_url
            attrs = await self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"]
            )
            self.visibility_timeout = int(attrs["Attributes"]["VisibilityTimeout"])

        def report(attempt: int, exc: Exception, delay: float) -> None:
            log.warning(
                "%s: queue %s not available (%s); run `ec-recommend provision`",
                self.name,
                self.subscription.queue,
                exc,
            )

        if self._stopping.is_set():
            return False
        try:
            await with_retry(
                resolve,
                is_retryable=lambda exc: isinstance(exc, (BotoCoreError, ClientError, OSError)),
                backoff=_BROKER_BACKOFF,
                max_attempts=None,
                may_retry=lambda: not self._stopping.is_set(),
                on_retry=report,
                sleep=self._pause,
            )
        except RetriesExhausted:
            return False  # stopped while waiting
        return True

    async def _pause(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _receive_loop(self) -> None:
        stopping = asyncio.create_task(self._stopping.wait())
        waits = _BROKER_BACKOFF.delays()
        try:
            while not self._stopping.is_set():
                free = await self._free_slots()
                receive = asyncio.create_task(self._receive(free))
                await asyncio.wait({receive, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not receive.done():
                    await self._abandon(receive)
                    self._release(free)
                    break
                try:
                    messages = receive.result()
                    waits = _BROKER_BACKOFF.delays()  # the next failure starts afresh
                except (BotoCoreError, ClientError, OSError) as exc:
                    # Not with_retry: a receive is a loop step that owns handler
                    # slots and races shutdown; the waits follow its schedule.
                    self._release(free)
                    log.warning("%s: receive failed (%s)", self.name, exc)
                    await self._pause(next(waits))
                    continue
                self._release(free - len(messages))
                for message in messages:
                    task = asyncio.create_task(self._handle(message))
                    self._inflight[task] = message["ReceiptHandle"]
                    task.add_done_callback(self._done)
        finally:
            stopping.cancel()

    async def _free_slots(self) -> int:
        """Take at least one handler slot, and a few more if they free up soon.

        Asking for one message whenever one slot frees would turn a busy queue
        into many receives of one; a short linger lets a fuller batch form.
        """
        await self._slots.acquire()
        free = 1
        wanted = min(10, self.config.consumer_concurrency)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _RECEIVE_LINGER
        while free < wanted:
            if not self._slots.locked():
                await self._slots.acquire()  # immediate: a slot is free
                free += 1
            elif loop.time() < deadline and not self._stopping.is_set():
                await asyncio.sleep(_RECEIVE_LINGER / 5)
            else:
                break
        return free

    async def _abandon(self, receive: asyncio.Task[list[dict[str, Any]]]) -> None:
        """End the long poll in flight at shutdown without stranding messages.

        Closing the connection does not stop SQS from handing that poll
        messages (which would then stay invisible for a whole visibility
        timeout), so the poll is waited out, at most ``consumer_wait_seconds``,
        and whatever it brings is returned at once.
        """
        done, _ = await asyncio.wait({receive}, timeout=self.config.consumer_wait_seconds + 2)
        if not done:
            receive.cancel()
            with suppress(asyncio.CancelledError, BotoCoreError, ClientError, OSError):
                await receive
            return
        with suppress(BotoCoreError, ClientError, OSError):
            for message in receive.result():
                await self._set_visibility(message["ReceiptHandle"], 0)
                self.stats.returned += 1

    def _release(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._slots.release()

    async def _receive(self, count: int) -> list[dict[str, Any]]:
        response = await self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=self.config.consumer_wait_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        self.stats.received += len(messages)
        return messages

    async def _handle(self, message: dict[str, Any]) -> None:
        receipt = message["ReceiptHandle"]
        system = message.get("Attributes", {})
        receives = int(system.get("ApproximateReceiveCount", "1"))
        if "SentTimestamp" in system:
            record_lag(self.subscription.queue, int(system["SentTimestamp"]) / 1000)
        carrier = {
            name: value["StringValue"]
            for name, value in message.get("MessageAttributes", {}).items()
            if "StringValue" in value
        }
        try:
            event = decode(message["Body"])
        except EventError as exc:
            self._reject(message, exc, carrier)
            # Nothing to retry: back at once, so it reaches the DLQ quickly.
            await self._set_visibility(receipt, 0)
            return
        with handling_message(
            self.subscription.queue,
            consumer=self.name,
            carrier=carrier or dict(event.metadata),
            event_type=event.type,
            event_id=event.id,
        ) as outcome:
            extender = asyncio.create_task(self._keep_invisible(receipt))
            try:
                async with self._running:
                    result = await self._apply(event)
            except Exception as exc:
                outcome.status = "error"
                record_failure(outcome.span, exc)
                self.stats.failed += 1
                log.exception(
                    "%s: handler for %s %s failed (receive %d)",
                    self.name,
                    event.type,
                    event.id,
                    receives,
                )
                # Retry sooner than the full visibility timeout, backing off per receive.
                await self._set_visibility(
                    receipt, min(self.visibility_timeout, 2 ** min(receives - 1, 12))
                )
                return
            finally:
                extender.cancel()
            outcome.status = _STATUS[result]
        setattr(self.stats, result, getattr(self.stats, result) + 1)
        if result == "handled":
            self.stats.by_type[event.type] = self.stats.by_type.get(event.type, 0) + 1
        self._deletes.add(receipt)

    def _reject(self, message: dict[str, Any], exc: EventError, carrier: dict[str, str]) -> None:
        with handling_message(
            self.subscription.queue, consumer=self.name, carrier=carrier
        ) as outcome:
            outcome.status = "malformed"
        if isinstance(exc, UnknownEventType):
            self.stats.unknown_type += 1
        else:
            self.stats.malformed += 1
        log.warning(
            "%s: rejected message %s (%s); leaving it to dead-letter",
            self.name,
            message.get("MessageId"),
            exc,
        )

    async def _apply(self, event: Event) -> str:
        handler = self.subscription.handlers.get(event.type)
        if handler is None:
            return "ignored"
        with call_scope(CallContext(request_id=event.correlation_id or event.id)):
            async with self.db.unit_of_work() as uow:
                if not await claim(uow, self.name, event.id, event.type):
                    return "duplicates"
                await handler(event, uow)
                await uow.commit()
        return "handled"

    async def _keep_invisible(self, receipt: str) -> None:
        interval = max(self.visibility_timeout / 2, 0.5)
        while True:
            await asyncio.sleep(interval)
            await self._set_visibility(receipt, max(self.visibility_timeout, 1))
            self.stats.extended += 1

    async def _set_visibility(self, receipt: str, seconds: int) -> None:
        try:
            await self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=seconds
            )
        except (BotoCoreError, ClientError, OSError) as exc:
            log.warning("%s: cannot change visibility (%s)", self.name, exc)

    async def _drain(self) -> None:
        """Let in-flight handlers finish within the grace period; return the rest."""
        if not self._inflight:
            return
        pending = set(self._inflight)
        _, late = await asyncio.wait(pending, timeout=self.config.shutdown_grace)
        receipts = [self._inflight[t] for t in late if t in self._inflight]
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        for receipt in receipts:
            await self._set_visibility(receipt, 0)
        self.stats.returned += len(receipts)
        if receipts:
            log.info("%s: returned %d unfinished messages to the queue", self.name, len(receipts))
