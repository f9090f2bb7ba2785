"""SQS consumer runtime: what every subscriber runs on.

A ``Subscription`` names a queue, the consumer's own database and one handler
per event type. The runtime long-polls the queue (batches of up to 10), runs
up to ``concurrency`` handlers at once, extends a message's visibility while
its handler works, and deletes (in batches) only after the handler's unit of
work committed together with the inbox row that makes the effect happen once
per event id. A failing handler's message is left for redelivery, so the
queue's redrive policy moves poison messages to its DLQ; malformed or unknown
messages are counted and left to dead-letter too. Shutdown stops receiving,
lets in-flight handlers finish for a grace period and returns the rest
(visibility 0).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ec_recommend.platform.events.envelope import Event
from ec_recommend.platform.storage import Migration, UnitOfWork

Handler = Callable[[Event, UnitOfWork], Awaitable[None]]
"""Applies one event inside ``uow``; the runtime commits. Raise to retry later."""


@dataclass(frozen=True)
class Subscription:
    """One consumer: its queue (unprefixed topology name), database and handlers.

    ``database`` names the consumer's own SQLite file / PostgreSQL schema;
    ``migrations`` create its tables (the runtime adds the inbox table itself).
    An event type the queue delivers but ``handlers`` lacks is acknowledged
    and counted as ignored. ``identity`` is the service identity (certificate)
    its handlers' calls present: the consumer's registered name, else ``name``.
    """

    name: str
    queue: str
    database: str
    migrations: Sequence[Migration]
    handlers: Mapping[str, Handler]
    identity: str = ""


@dataclass
class ConsumerStats:
    """Counters of one consumer, for metrics and tests."""

    received: int = 0
    handled: int = 0
    duplicates: int = 0
    ignored: int = 0
    failed: int = 0
    malformed: int = 0
    unknown_type: int = 0
    returned: int = 0
    extended: int = 0  # visibility extensions of messages still being handled
    by_type: dict[str, int] = field(default_factory=dict)
