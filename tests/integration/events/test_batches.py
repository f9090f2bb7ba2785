"""Batches and effects against moto: deletes shared across batches, effects after the commit."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from ec_recommend.config import EventsConfig, StorageConfig
from ec_recommend.platform.events import worker as worker_module
from ec_recommend.platform.events.aws import queue_url
from ec_recommend.platform.events.consumer import EffectScope, Handler
from ec_recommend.platform.events.envelope import Event, encode
from ec_recommend.platform.events.inbox import ensure_inbox, pending_effects
from ec_recommend.platform.events.provision import ProvisionReport
from ec_recommend.platform.events.runner import running_consumers
from ec_recommend.platform.events.topology import Topology
from ec_recommend.platform.events.worker import ConsumerWorker
from ec_recommend.platform.storage import UnitOfWork, open_database
from ec_recommend.platform.telemetry.metrics import process_metrics
from tests.conftest import wait_for
from tests.integration.events.conftest import (
    EFFECTS_MIGRATIONS,
    count_effect,
    depth_is,
    effect_counts,
    product_event,
    stored_effects,
    subscription,
)

pytestmark = pytest.mark.asyncio

QUEUE = "search-index-queue"
DLQ = "search-index-dlq"


async def send_batch(sqs: Any, config: EventsConfig, events: list[Event]) -> None:
    url = await queue_url(sqs, config, QUEUE)
    for start in range(0, len(events), 10):
        await sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": encode(e)}
                for i, e in enumerate(events[start : start + 10])
            ],
        )


class CountingSqs:
    """An SQS client that counts the calls made through it, and notes which
    receive brought each receipt and which receipts each delete carried."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self.calls: Counter[str] = Counter()
        self.received_by: dict[str, int] = {}  # receipt -> its receive's index
        self.deletes: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._sqs, name)

        async def call(**kwargs: Any) -> Any:
            self.calls[name] += 1
            if name == "delete_message_batch":
                self.deletes.append([e["ReceiptHandle"] for e in kwargs["Entries"]])
            response = await method(**kwargs)
            if name == "receive_message":
                index = self.calls[name]
                self.received_by.update(
                    (m["ReceiptHandle"], index) for m in response.get("Messages", [])
                )
            return response

        return call

    def check_deletes(self, handled: int) -> None:
        """Every handled message was deleted once, at most ten to a call."""
        deleted = [receipt for call in self.deletes for receipt in call]
        assert len(deleted) == len(set(deleted)) == handled
        assert set(deleted) <= set(self.received_by)
        assert all(1 <= len(call) <= 10 for call in self.deletes)

    def deletes_sharing_receives(self) -> int:
        """How many delete calls carried the receipts of more than one receive."""
        return sum(len({self.received_by[r] for r in call}) > 1 for call in self.deletes)


async def test_every_handled_message_is_deleted_and_no_visibility_calls(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    events = [product_event(f"p-{i}") for i in range(25)]
    await send_batch(sqs, events_config, events)
    counting = CountingSqs(sqs)
    sub = subscription(QUEUE, {"product.updated": count_effect})
    async with open_database(sqlite_storage, "probe", EFFECTS_MIGRATIONS) as db:
        await ensure_inbox(db)
        worker = ConsumerWorker(sub, db, counting, events_config)
        task = asyncio.create_task(worker.run())
        await wait_for(lambda: worker.stats.handled == 25, timeout=30)
        await wait_for(lambda: depth_is(sqs, events_config, QUEUE, 0), timeout=10)
        worker.stop()
        await task
        assert await effect_counts(worker) == {e.id: 1 for e in events}
    assert worker.stats.batches >= 3  # at most 10 a receive
    counting.check_deletes(25)
    assert counting.calls["change_message_visibility"] == 0
    assert counting.calls["change_message_visibility_batch"] == 0  # quick batches: no extension


class BackdatedSqs:
    """An SQS client whose receives say their first message was sent ``age`` seconds ago."""

    def __init__(self, sqs: Any, age: float) -> None:
        self._sqs = sqs
        self._age = age

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    async def receive_message(self, **kwargs: Any) -> Any:
        response = await self._sqs.receive_message(**kwargs)
        messages = response.get("Messages", [])
        if messages:
            sent = int((time.time() - self._age) * 1000)
            messages[0]["Attributes"]["SentTimestamp"] = str(sent)
        return response


def _processed(status: str) -> float:
    try:
        return process_metrics().queue_message_processed.get({"queue": QUEUE, "status": status})
    except KeyError:
        return 0


async def test_a_batch_reports_its_oldest_message_as_the_lag_and_counts_every_outcome(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    sqlite_storage: StorageConfig,
    sqs: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lag gauge (alerted on at 30 s) is set once a batch, to its oldest
    message's age wherever it sits in the batch; the outcome counter, taken
    once a batch, counts each message."""
    lags: list[float] = []  # the send times the worker reports, in order
    monkeypatch.setattr(worker_module, "record_lag", lambda queue, sent: lags.append(sent))
    events = [product_event(f"p-{i}") for i in range(10)]
    await send_batch(sqs, events_config, events)
    succeeded = _processed("success")
    sub = subscription(QUEUE, {"product.updated": count_effect})
    async with open_database(sqlite_storage, "probe", EFFECTS_MIGRATIONS) as db:
        await ensure_inbox(db)
        worker = ConsumerWorker(sub, db, BackdatedSqs(sqs, age=600), events_config)
        task = asyncio.create_task(worker.run())
        await wait_for(lambda: worker.stats.handled == 10, timeout=30)
        worker.stop()
        await task
    assert len(lags) == worker.stats.batches < 10  # once a batch, and batches of several
    assert all(time.time() - sent >= 600 for sent in lags)  # each its first, backdated
    assert _processed("success") - succeeded == 10


async def test_small_batches_share_their_deletes(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    """Receives of at most two: their receipts leave together, up to ten a call."""
    config = replace(events_config, consumer_concurrency=2, consumer_batch_linger=0.0)
    events = [product_event(f"p-{i}") for i in range(30)]
    await send_batch(sqs, config, events)
    counting = CountingSqs(sqs)
    sub = subscription(QUEUE, {"product.updated": count_effect})
    async with open_database(sqlite_storage, "probe", EFFECTS_MIGRATIONS) as db:
        await ensure_inbox(db)
        worker = ConsumerWorker(sub, db, counting, config)
        task = asyncio.create_task(worker.run())
        await wait_for(lambda: worker.stats.handled == 30, timeout=30)
        # Deleted by the timers, with the worker still running.
        await wait_for(lambda: depth_is(sqs, config, QUEUE, 0), timeout=10)
        worker.stop()
        await task
    assert worker.stats.batches >= 15
    counting.check_deletes(30)
    assert len(counting.deletes) < worker.stats.batches
    assert counting.deletes_sharing_receives() >= 1


async def test_a_stop_deletes_the_messages_whose_deletes_were_pending(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    events = [product_event(f"p-{i}") for i in range(3)]
    await send_batch(sqs, events_config, events)
    counting = CountingSqs(sqs)
    sub = subscription(QUEUE, {"product.updated": count_effect})
    async with open_database(sqlite_storage, "probe", EFFECTS_MIGRATIONS) as db:
        await ensure_inbox(db)
        # A timer that never expires here: only the stop can send the deletes.
        worker = ConsumerWorker(sub, db, counting, events_config, delete_delay=600.0)
        task = asyncio.create_task(worker.run())
        await wait_for(lambda: worker.stats.handled == 3, timeout=30)
        assert counting.deletes == []
        worker.stop()
        await task
        assert await depth_is(sqs, events_config, QUEUE, 0)  # none left invisible
    counting.check_deletes(3)
    assert worker.stats.returned == 0


async def test_a_failing_message_is_redelivered_alone_and_the_rest_of_its_batch_deleted(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    topology: Topology,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    async def handler(event: Event, uow: UnitOfWork) -> None:
        if event.data.product_id == "poison":  # type: ignore[union-attr]
            raise RuntimeError("cannot apply")
        await count_effect(event, uow)

    good = [product_event(f"g-{i}") for i in range(4)]
    poison = product_event("poison")
    await send_batch(sqs, events_config, [good[0], good[1], poison, good[2], good[3]])
    sub = subscription(QUEUE, {"product.updated": handler})
    async with running_consumers(sqlite_storage, events_config, [sub]) as (worker,):
        await wait_for(lambda: worker.stats.handled == 4, timeout=20)
        assert await effect_counts(worker) == {e.id: 1 for e in good}
        # Only the poison message is left, delivered again until it dead-letters.
        await wait_for(lambda: depth_is(sqs, events_config, DLQ, 1), timeout=30)
        assert worker.stats.failed == topology.queue(QUEUE).max_receive_count
        assert await depth_is(sqs, events_config, QUEUE, 0)
        assert worker.stats.handled == 4 and worker.stats.duplicates == 0


async def test_an_effect_that_failed_after_the_commit_runs_again_and_only_it(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    storage: StorageConfig,
    sqs: Any,
) -> None:
    attempts: Counter[str] = Counter()
    sent: Counter[str] = Counter()

    async def effect(event: Event, scope: EffectScope) -> None:
        attempts[event.id] += 1
        if attempts[event.id] == 1:
            raise ConnectionError("the mail server is down")
        sent[event.id] += 1

    event = product_event()
    await send_batch(sqs, events_config, [event])
    sub = subscription(QUEUE, {"product.updated": Handler(count_effect, effect)})
    async with running_consumers(storage, events_config, [sub]) as (worker,):
        await wait_for(lambda: worker.stats.effects_retried == 1, timeout=20)
        await wait_for(lambda: depth_is(sqs, events_config, QUEUE, 0), timeout=10)
        assert await effect_counts(worker) == {event.id: 1}  # local writes once
        assert (attempts[event.id], sent[event.id]) == (2, 1)
        assert await pending_effects(worker.db, worker.name) == set()
        assert (worker.stats.failed, worker.stats.handled) == (1, 1)


async def test_a_redelivery_after_the_commit_but_before_the_effect_runs_the_effect_once(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    """The process stops between the inbox commit and the effect: the next one runs it."""
    config = replace(events_config, shutdown_grace=0.3)
    committed = asyncio.Event()
    effects: Counter[str] = Counter()

    async def never_done(event: Event, scope: EffectScope) -> None:
        committed.set()
        await asyncio.Event().wait()  # cut off by the shutdown

    async def effect(event: Event, scope: EffectScope) -> None:
        effects[event.id] += 1

    event = product_event()
    await send_batch(sqs, config, [event])
    first = subscription(QUEUE, {"product.updated": Handler(count_effect, never_done)})
    async with running_consumers(sqlite_storage, config, [first]) as (worker,):
        await committed.wait()
    assert worker.stats.returned == 1
    assert await stored_effects(sqlite_storage) == {event.id: 1}  # the commit stands

    second = subscription(QUEUE, {"product.updated": Handler(count_effect, effect)})
    async with running_consumers(sqlite_storage, config, [second]) as (again,):
        await wait_for(lambda: again.stats.effects_retried == 1, timeout=10)
        await wait_for(lambda: depth_is(sqs, config, QUEUE, 0), timeout=10)
        assert effects == {event.id: 1}
        assert await effect_counts(again) == {event.id: 1}  # not applied twice
        assert await pending_effects(again.db, again.name) == set()
