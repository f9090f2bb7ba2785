"""Bringing every pushed event to every gateway process: one interface, four backends.

- ``SqsFanout``: an SQS queue of this process's own, subscribed to the topics
  (created on start, removed on clean shutdown; a process that dies leaves a
  queue whose heartbeat tag goes stale, swept by the next gateway). When
  this process also hosts services (``serve gateway order ...``), it hears
  what their relays publish in-process and its queue leaves those out.
- ``RedisFanout``: gateways share one SQS queue (each event reaches one of
  them) and republish to a Redis channel every gateway listens to.
- ``PublishedFanout``: the outbox relays of this very process publish every
  pushed event (``up``: a gateway hosted with every service); it hears
  their published batches (``platform.events.published_here``) instead of
  receiving them back from a queue of its own.
- ``LocalFanout``: no events configured; a single process delivering to itself.

``publish(event)`` injects an event the same way the backend's events travel
(SNS for SQS, the Redis channel for Redis), for tools, tests and benches.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from ec_recommend.edge.realtime.hub import Hub
from ec_recommend.edge.realtime.messages import PUSHED_EVENTS, push_for
from ec_recommend.platform.events.envelope import Event, EventError, decode
from ec_recommend.platform.events.published_here import Listener, Published, PublishedHere

log = logging.getLogger(__name__)

OnEvent = Callable[[Event], None]


class Fanout(Protocol):
    name: str

    async def publish(self, event: Event) -> None: ...


def hub_sink(hub: Hub) -> OnEvent:
    """Deliver a domain event to the hub's subscribers (if clients see it at all)."""

    def on_event(event: Event) -> None:
        push = push_for(event)
        if push is not None:
            hub.deliver(push)

    return on_event


def deliver_bodies(on_event: OnEvent, bodies: list[str]) -> None:
    for body in bodies:
        try:
            event = decode(body)
        except EventError as exc:
            log.warning("realtime: dropped an undecodable event: %s", exc)
            continue
        on_event(event)


def pushed_heard(on_event: OnEvent) -> Listener:
    """A listener to this process's relays that hands their pushed events to ``on_event``."""

    def hear(events: Published) -> None:
        bodies = [body for event_type, body in events if event_type in PUSHED_EVENTS]
        if bodies:
            deliver_bodies(on_event, bodies)

    return hear


class LocalFanout:
    name = "local"

    def __init__(self, on_event: OnEvent) -> None:
        self.on_event = on_event

    async def publish(self, event: Event) -> None:
        self.on_event(event)


@asynccontextmanager
async def local_fanout(on_event: OnEvent) -> AsyncIterator[LocalFanout]:
    yield LocalFanout(on_event)


class PublishedFanout:
    name = "process"

    def __init__(self, on_event: OnEvent) -> None:
        self.on_event = on_event

    async def publish(self, event: Event) -> None:
        self.on_event(event)


@asynccontextmanager
async def published_fanout(
    published_here: PublishedHere, on_event: OnEvent
) -> AsyncIterator[PublishedFanout]:
    with published_here.listening(pushed_heard(on_event)):
        yield PublishedFanout(on_event)
