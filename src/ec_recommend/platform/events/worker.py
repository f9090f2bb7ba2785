"""The runtime behind ``consumer.Subscription``: one worker per queue.

See ``consumer`` for the guarantees. Receiving asks for at most as many
messages as ``consumer_concurrency`` plus one prefetched batch can take; each
received batch is one task (``handling.handle_batch``) that ends by handing
its done messages' receipts to the worker's ``PendingDeletes`` and sending
one ChangeMessageVisibilityBatch for its failed ones. The deletes of several
batches share a DeleteMessageBatch (up to 10 receipts, each waiting at most
``DELETE_DELAY``); the batch does not wait for them, so its handler slots
free at once. Stopping flushes the pending deletes and waits for them; a
process killed first loses at most those deletes: the messages come back
after their visibility timeout and the inbox makes them no-ops. A single
keeper task per worker extends the visibility of batches that run long, a
batch at a time.

Under load a receive returns whatever is there, often a few messages, and the
next one follows at once: many small batches, each a receive.
So after a partial batch the next receive lingers ``consumer_batch_linger``
(see ``receive_delay``); an empty or full one does not, so an idle queue still
long-polls and the first message after idle is handled at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ec_recommend.config import EventsConfig
from ec_recommend.platform.events.aws import queue_url
from ec_recommend.platform.events.consumer import ConsumerStats, Subscription, as_handler
from ec_recommend.platform.events.deletes import (
    DELETE_DELAY,
    PendingDeletes,
    delete_messages,
    set_visibilities,
)
from ec_recommend.platform.events.envelope import Event, EventError, UnknownEventType, decode
from ec_recommend.platform.events.handling import FAILED, HANDLED, Outcome, handle_batch
from ec_recommend.platform.retry import Backoff, RetriesExhausted, with_retry
from ec_recommend.platform.storage import Database
from ec_recommend.platform.telemetry.messaging import (
    BatchOutcomes,
    MessageHandling,
    handling_message,
    record_lag,
)

log = logging.getLogger(__name__)

_RECEIVE_LINGER = 0.02  # seconds to wait for more free slots before receiving
_BROKER_BACKOFF = Backoff(initial_delay=0.2, max_delay=10.0)  # a queue or broker not there yet
_LAST_DELETES = 1.0  # seconds the final deletes get even when the grace is spent
_STATUS = {"handled": "success", "duplicates": "duplicate", "ignored": "ignored"}


def receive_delay(received: int, requested: int, linger: float) -> float:
    """Seconds to wait before the next receive, given what the last one brought.

    A partial batch means messages are arriving but the queue was drained:
    waiting a little lets the next batch fill. An empty one means the queue is
    idle (the long poll returns the next message as soon as it lands), and a
    full one means more may be waiting already; neither should wait.
    """
    if linger <= 0 or received == 0 or received >= requested:
        return 0.0
    return linger


def _prefetch(config: EventsConfig) -> int:
    return min(10, config.consumer_concurrency)


@dataclass
class _Batch:
    """A received batch being handled: its receipts and when it was last made invisible."""

    receipts: list[str]
    invisible_since: float


class ConsumerWorker:
    """Consumes one subscription's queue until ``stop()``."""

    def __init__(
        self,
        subscription: Subscription,
        db: Database,
        sqs: Any,
        config: EventsConfig,
        *,
        delete_delay: float | None = None,
    ) -> None:
        """``delete_delay`` overrides ``DELETE_DELAY`` (capped at a quarter of
        the queue's visibility timeout when not given)."""
        self.subscription = subscription
        self.handlers = {kind: as_handler(h) for kind, h in subscription.handlers.items()}
        self.db = db
        self.sqs = sqs
        self.config = config
        self.stats = ConsumerStats()
        self.queue_url = ""
        self.visibility_timeout = 30
        # At most ``consumer_concurrency`` messages are being handled, and one
        # more batch may wait, already received (and kept invisible), so the
        # next receive overlaps the handling instead of following it.
        self._slots = asyncio.Semaphore(config.consumer_concurrency + _prefetch(config))
        self._inflight: dict[asyncio.Task[None], _Batch] = {}
        self._delete_delay = delete_delay
        self._deletes = PendingDeletes(self._delete, self.name)
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
        keeper: asyncio.Task[None] | None = None
        try:
            if await self._resolve_queue():
                keeper = asyncio.create_task(self._keep_invisible(), name=f"{self.name}-keeper")
                self._ready.set()
                await self._receive_loop()
        finally:
            self._ready.set()
            await self._drain()
            if keeper is not None:
                keeper.cancel()
                with suppress(asyncio.CancelledError):
                    await keeper

    async def _resolve_queue(self) -> bool:
        """Find the queue (waiting while it is not provisioned); False if stopped first."""

        async def resolve() -> None:
            self.queue_url = await queue_url(self.sqs, self.config, self.subscription.queue)
            attrs = await self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"]
            )
            self.visibility_timeout = int(attrs["Attributes"]["VisibilityTimeout"])
            # A receipt waiting to be deleted must not outlive its invisibility.
            self._deletes.delay = (
                min(DELETE_DELAY, self.visibility_timeout / 4)
                if self._delete_delay is None
                else self._delete_delay
            )

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
        loop = asyncio.get_running_loop()
        delay = 0.0
        try:
            while not self._stopping.is_set():
                if delay:
                    # Before taking slots: a lingering receive holds none.
                    self.stats.lingered += 1
                    await self._pause(delay)
                    if self._stopping.is_set():
                        break
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
                    delay = 0.0
                    await self._pause(next(waits))
                    continue
                self._release(free - len(messages))
                delay = receive_delay(len(messages), free, self.config.consumer_batch_linger)
                if messages:
                    task = asyncio.create_task(self._handle_batch(messages))
                    receipts = [m["ReceiptHandle"] for m in messages]
                    self._inflight[task] = _Batch(receipts, loop.time())
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
            messages = receive.result()
            await self._set_visibilities([(m["ReceiptHandle"], 0) for m in messages])
            self.stats.returned += len(messages)

    def _release(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    def _done(self, task: asyncio.Task[None]) -> None:
        batch = self._inflight.pop(task, None)
        if batch is not None:
            self._release(len(batch.receipts))

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

    async def _handle_batch(self, messages: list[dict[str, Any]]) -> None:
        """Handle one received batch (``_handle_counted``), its metrics taken once."""
        self.stats.batches += 1
        # Once a batch: the lag (of its oldest message) and the outcome counts.
        sent = [
            int(message["Attributes"]["SentTimestamp"]) / 1000
            for message in messages
            if "SentTimestamp" in message.get("Attributes", {})
        ]
        if sent:
            record_lag(self.subscription.queue, min(sent))
        counts = BatchOutcomes()
        try:
            await self._handle_counted(messages, counts)
        finally:
            counts.flush()

    async def _handle_counted(self, messages: list[dict[str, Any]], counts: BatchOutcomes) -> None:
        """Handle the batch, then queue its deletes and return its failures."""
        later: list[tuple[str, int]] = []  # (receipt, seconds until it comes back)
        accepted: list[tuple[dict[str, Any], Event, MessageHandling]] = []
        for message in messages:
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
                later.append((message["ReceiptHandle"], 0))
                continue
            handling = MessageHandling(
                self.subscription.queue,
                consumer=self.name,
                carrier=carrier or dict(event.metadata),
                event_type=event.type,
                event_id=event.id,
                metrics=counts,
            )
            accepted.append((message, event, handling))
        outcomes: list[Outcome] = []
        try:
            if accepted:
                outcomes = await handle_batch(
                    self.db,
                    self.name,
                    self.handlers,
                    [event for _, event, _ in accepted],
                    phase=lambda index: accepted[index][2].active(),
                )
        except BaseException as exc:
            for _, _, handling in accepted:
                handling.finish("error", exc)
            raise
        done: list[str] = []
        for (message, event, handling), outcome in zip(accepted, outcomes, strict=True):
            if outcome.status == FAILED:
                later.append((message["ReceiptHandle"], self._retry_delay(message)))
                self._failed(event, message, handling, outcome)
                continue
            handling.finish(_STATUS[outcome.status])
            setattr(self.stats, outcome.status, getattr(self.stats, outcome.status) + 1)
            if outcome.effect_rerun:
                self.stats.effects_retried += 1
            elif outcome.status == HANDLED:
                self.stats.by_type[event.type] = self.stats.by_type.get(event.type, 0) + 1
            done.append(message["ReceiptHandle"])
        self._deletes.add(done)
        if later:
            await self._set_visibilities(later)

    def _retry_delay(self, message: dict[str, Any]) -> int:
        """Retry sooner than the full visibility timeout, backing off per receive."""
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        return min(self.visibility_timeout, int(2 ** min(receives - 1, 12)))

    def _failed(
        self, event: Event, message: dict[str, Any], handling: MessageHandling, outcome: Outcome
    ) -> None:
        handling.finish("error", outcome.error)
        self.stats.failed += 1
        log.error(
            "%s: handler for %s %s failed (receive %s)",
            self.name,
            event.type,
            event.id,
            message.get("Attributes", {}).get("ApproximateReceiveCount", "1"),
            exc_info=outcome.error,
        )

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

    async def _keep_invisible(self) -> None:
        """Extend, a batch at a time, the visibility of batches handled for long.

        Woken every quarter timeout; a batch invisible for half its timeout
        gets a fresh one, so a long handler never lets its messages reappear,
        and a quick batch costs no call at all.
        """
        loop = asyncio.get_running_loop()
        timeout = max(self.visibility_timeout, 1)
        while True:
            await asyncio.sleep(timeout / 4)
            now = loop.time()
            due = [b for b in self._inflight.values() if now - b.invisible_since >= timeout / 2]
            if not due:
                continue
            for batch in due:
                batch.invisible_since = now
            await self._set_visibilities([(r, timeout) for b in due for r in b.receipts])
            self.stats.extended += len(due)

    async def _delete(self, receipts: Sequence[str]) -> None:
        await delete_messages(self.sqs, self.queue_url, self.name, receipts)

    async def _set_visibilities(self, timeouts: list[tuple[str, int]]) -> None:
        await set_visibilities(self.sqs, self.queue_url, self.name, timeouts)

    async def _drain(self) -> None:
        """Let in-flight batches finish within the grace period, delete what is
        done (pending deletes included) and return the rest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_grace
        late: set[asyncio.Task[None]] = set()
        if self._inflight:
            _, late = await asyncio.wait(set(self._inflight), timeout=self.config.shutdown_grace)
        receipts = [r for t in late if t in self._inflight for r in self._inflight[t].receipts]
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        # Before returning the late batches: their done messages are among
        # their receipts and must be deleted, not made visible again.
        await self._deletes.close(timeout=max(deadline - loop.time(), _LAST_DELETES))
        if receipts:
            await self._set_visibilities([(receipt, 0) for receipt in receipts])
        self.stats.returned += len(receipts)
        if receipts:
            log.info("%s: returned %d unfinished messages to the queue", self.name, len(receipts))
