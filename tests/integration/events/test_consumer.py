"""The SQS consumer runtime against moto: once-only effects, redrive, bad input, shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import replace
from typing import Any

import pytest

from ec_recommend.config import EventsConfig, StorageConfig
from ec_recommend.platform.events import dlq
from ec_recommend.platform.events.aws import queue_url
from ec_recommend.platform.events.envelope import Event, encode
from ec_recommend.platform.events.provision import ProvisionReport
from ec_recommend.platform.events.runner import running_consumers
from ec_recommend.platform.events.topology import Topology
from ec_recommend.platform.storage import UnitOfWork
from ec_recommend.runtime import process
from tests.conftest import wait_for
from tests.integration.events.conftest import (
    count_effect,
    depth_is,
    effect_counts,
    product_event,
    queue_depth,
    stored_effects,
    subscription,
)

pytestmark = pytest.mark.asyncio

QUEUE = "search-index-queue"
DLQ = "search-index-dlq"


async def send(
    sqs: Any, config: EventsConfig, body: str, event_type: str = "product.updated"
) -> None:
    await sqs.send_message(
        QueueUrl=await queue_url(sqs, config, QUEUE),
        MessageBody=body,
        MessageAttributes={"type": {"DataType": "String", "StringValue": event_type}},
    )


async def test_each_event_takes_effect_once_when_delivered_repeatedly(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    storage: StorageConfig,
    sqs: Any,
) -> None:
    repeated, single = product_event("p-1"), product_event("p-2")
    for body in (encode(repeated), encode(repeated), encode(single), encode(repeated)):
        await send(sqs, events_config, body)
    sub = subscription(QUEUE, {"product.updated": count_effect})
    async with running_consumers(storage, events_config, [sub]) as (worker,):
        await wait_for(lambda: worker.stats.handled + worker.stats.duplicates == 4, timeout=20)
        assert await effect_counts(worker) == {repeated.id: 1, single.id: 1}
        assert worker.stats.duplicates == 2
        await wait_for(lambda: depth_is(sqs, events_config, QUEUE, 0), timeout=10)


async def test_failing_handler_dead_letters_and_redrive_after_fix_processes_it(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    topology: Topology,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    broken = True

    async def handler(event: Event, uow: UnitOfWork) -> None:
        if broken:
            raise RuntimeError("downstream is broken")
        await count_effect(event, uow)

    event = product_event()
    await send(sqs, events_config, encode(event))
    sub = subscription(QUEUE, {"product.updated": handler})
    async with running_consumers(sqlite_storage, events_config, [sub]) as (worker,):
        await wait_for(lambda: depth_is(sqs, events_config, DLQ, 1), timeout=30)
        assert worker.stats.failed == topology.queue(QUEUE).max_receive_count
        letters = await dlq.peek(sqs, events_config, topology.queue(QUEUE))
        assert [(d.event_id, d.event_type) for d in letters] == [(event.id, "product.updated")]

        broken = False
        assert await dlq.redrive(sqs, events_config, topology.queue(QUEUE), limit=5) == 1
        await wait_for(lambda: worker.stats.handled == 1, timeout=20)
        assert await effect_counts(worker) == {event.id: 1}
        assert await queue_depth(sqs, events_config, DLQ) == 0


BAD_BODIES = {
    "not json": "{not json",
    "not an object": "[1, 2]",
    "unknown type": json.dumps(
        {
            "id": "e1",
            "type": "order.teleported",
            "timestamp": "2026-01-01T00:00:00Z",
            "source": "test",
            "data": {},
        }
    ),
    "missing fields": json.dumps({"type": "product.updated", "data": {"productId": "p"}}),
    "missing payload id": json.dumps(
        {
            "id": "e2",
            "type": "product.updated",
            "timestamp": "2026-01-01T00:00:00Z",
            "source": "test",
            "data": {"name": "x"},
        }
    ),
    "wrong payload types": json.dumps(
        {
            "id": "e3",
            "type": "product.updated",
            "timestamp": "2026-01-01T00:00:00Z",
            "source": "test",
            "data": {"productId": 5, "stockQuantity": "many"},
        }
    ),
}


async def test_bad_input_is_counted_dead_lettered_and_the_worker_keeps_going(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    for body in BAD_BODIES.values():
        await send(sqs, events_config, body)
    good = product_event()
    await send(sqs, events_config, encode(good))
    sub = subscription(QUEUE, {"product.updated": count_effect})
    async with running_consumers(sqlite_storage, events_config, [sub]) as (worker,):
        await wait_for(lambda: depth_is(sqs, events_config, DLQ, len(BAD_BODIES)), timeout=30)
        assert await effect_counts(worker) == {good.id: 1}
        assert worker.stats.unknown_type >= 1
        assert worker.stats.malformed >= len(BAD_BODIES) - 1
        # Still consuming after all that.
        later = product_event("p-9")
        await send(sqs, events_config, encode(later))
        await wait_for(lambda: worker.stats.handled == 2, timeout=20)


async def test_shutdown_lets_a_handler_finish_within_the_grace_period(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    started, finish = asyncio.Event(), asyncio.Event()

    async def handler(event: Event, uow: UnitOfWork) -> None:
        started.set()
        await finish.wait()
        await count_effect(event, uow)

    event = product_event()
    await send(sqs, events_config, encode(event))
    sub = subscription(QUEUE, {"product.updated": handler})
    async with running_consumers(sqlite_storage, events_config, [sub]) as (worker,):
        await started.wait()
        worker.stop()  # shutdown begins while the handler is still working
        finish.set()
    assert worker.stats.returned == 0
    assert await stored_effects(sqlite_storage) == {event.id: 1}
    await wait_for(lambda: depth_is(sqs, events_config, QUEUE, 0), timeout=10)


async def test_shutdown_returns_a_message_whose_handler_outlives_the_grace_period(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    config = replace(events_config, shutdown_grace=0.3)
    started = asyncio.Event()

    async def stuck(event: Event, uow: UnitOfWork) -> None:
        await count_effect(event, uow)
        started.set()
        await asyncio.Event().wait()  # never finishes on its own

    event = product_event()
    await send(sqs, config, encode(event))
    async with running_consumers(
        sqlite_storage, config, [subscription(QUEUE, {"product.updated": stuck})]
    ) as (worker,):
        await started.wait()
    assert worker.stats.returned == 1
    assert await stored_effects(sqlite_storage) == {}  # the cancelled unit of work rolled back

    async with running_consumers(
        sqlite_storage, config, [subscription(QUEUE, {"product.updated": count_effect})]
    ) as (again,):
        # Returned with visibility 0: picked up at once, not after the timeout.
        await wait_for(lambda: again.stats.handled == 1, timeout=5)
        assert await effect_counts(again) == {event.id: 1}


async def test_sigterm_during_processing_loses_no_message(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    config = replace(events_config, shutdown_grace=0.5)
    events = [product_event(f"p-{i}") for i in range(20)]
    for event in events:
        await send(sqs, config, encode(event))
    seen = asyncio.Event()

    async def handler(event: Event, uow: UnitOfWork) -> None:
        seen.set()
        await count_effect(event, uow)
        await asyncio.sleep(0.05)  # work in progress when the signal arrives

    sub = subscription(QUEUE, {"product.updated": handler})

    async def body(stop: asyncio.Event) -> None:
        async with running_consumers(sqlite_storage, config, [sub]):
            await seen.wait()
            os.kill(os.getpid(), signal.SIGTERM)
            await stop.wait()

    await process.until_stopped(body)
    async with running_consumers(
        sqlite_storage, config, [subscription(QUEUE, {"product.updated": count_effect})]
    ) as (again,):
        await wait_for(lambda: depth_is(sqs, config, QUEUE, 0), timeout=30)
        assert await effect_counts(again) == {event.id: 1 for event in events}


async def test_a_slow_handler_keeps_its_message_invisible(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    calls = 0
    worker_ref: list[Any] = []

    async def slow(event: Event, uow: UnitOfWork) -> None:
        nonlocal calls
        calls += 1
        # Outlive the 2 s visibility timeout twice over before finishing.
        await wait_for(lambda: worker_ref and worker_ref[0].stats.extended >= 3, timeout=20)
        await count_effect(event, uow)

    event = product_event()
    await send(sqs, events_config, encode(event))
    sub = subscription(QUEUE, {"product.updated": slow})
    async with running_consumers(sqlite_storage, events_config, [sub]) as (worker,):
        worker_ref.append(worker)
        await wait_for(lambda: worker.stats.handled == 1, timeout=30)
        assert worker.stats.received == 1  # never redelivered while being handled
        assert calls == 1
        assert await effect_counts(worker) == {event.id: 1}
        await wait_for(lambda: depth_is(sqs, events_config, QUEUE, 0), timeout=10)


async def test_several_consumers_share_one_loop(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    search, cache = product_event("a"), product_event("b")
    await send(sqs, events_config, encode(search))
    await sqs.send_message(
        QueueUrl=await queue_url(sqs, events_config, "cache-invalidation-queue"),
        MessageBody=encode(cache),
    )
    subs = [
        subscription(QUEUE, {"product.updated": count_effect}, name="one"),
        subscription("cache-invalidation-queue", {"product.updated": count_effect}, name="two"),
    ]
    async with running_consumers(sqlite_storage, events_config, subs) as (one, two):
        await wait_for(lambda: one.stats.handled == 1 and two.stats.handled == 1, timeout=20)
        assert await effect_counts(one) == {search.id: 1}
        assert await effect_counts(two) == {cache.id: 1}
