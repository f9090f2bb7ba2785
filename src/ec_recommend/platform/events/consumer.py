"""SQS consumer runtime: what every subscriber runs on.

A ``Subscription`` names a queue, the consumer's own database and one
``Handler`` per event type. The runtime long-polls the queue (batches of up
to 10) and handles each received batch as a unit:

1. one transaction: every new event's inbox row plus its handler's ``apply``
   (local writes only, no network), committed together;
2. after the commit, the handlers' ``effect``s (emails, gRPC calls, other
   stores), concurrently, outside any transaction;
3. every message that is done is deleted: its receipt waits a moment
   (``deletes.DELETE_DELAY``) to share a DeleteMessageBatch, up to 10
   receipts, with those of the next batches; a stop sends what is waiting.
   A delete lost (a failed call, or a process killed while it waited) means
   only a redelivery after the visibility timeout, which the inbox makes a
   no-op.

An event whose effect has not completed keeps a pending mark next to its
inbox row; a redelivery of it skips ``apply`` (already committed) and runs
the effect again, so an effect runs at least once per event, and exactly
once where the callee deduplicates on a key the effect passes (a reservation
id, an email key). A failing ``apply`` leaves its message for redelivery (the
rest of the batch is applied without it); so does a failing effect. The
queue's redrive policy moves a message that keeps failing to its DLQ;
malformed or unknown messages are counted and left to dead-letter too. A
batch that runs long has its visibility extended as a whole. Shutdown stops
receiving, lets in-flight batches finish for a grace period and returns the
rest (visibility 0).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ec_recommend.platform.events.envelope import Event
from ec_recommend.platform.storage import Database, Migration, UnitOfWork

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

Apply = Callable[[Event, UnitOfWork], Awaitable[bool | None]]
"""Applies one event's local writes inside ``uow`` (the runtime commits). No
network calls: the transaction is shared by the whole batch. Return False
when this event needs no effect (say, it booked nothing new); raise to retry."""


class EffectScope:
    """What an effect gets besides its event: the consumer's database and what
    the effects of one received batch share.

    ``once`` memoizes a lookup (say, a user's address) for the batch, so ten
    emails to one customer ask UserService once; a lookup that fails is not
    cached. ``together`` makes the reads or writes each effect would make on
    its own one call for all of them.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._memo: dict[Any, asyncio.Future[Any]] = {}
        self._gathering: dict[Any, _Gathering[Any, Any]] = {}
        self._running: set[asyncio.Task[Any]] = set()

    async def once(self, key: Any, lookup: Callable[[], Awaitable[T]]) -> T:
        pending = self._memo.get(key)
        if pending is None:
            pending = self._memo[key] = asyncio.ensure_future(lookup())
        try:
            return await asyncio.shield(pending)  # type: ignore[no-any-return]
        except BaseException:
            if self._memo.get(key) is pending and pending.done():
                del self._memo[key]
            raise

    async def together(
        self, kind: Any, item: K, run: Callable[[list[K]], Awaitable[Sequence[V]]]
    ) -> V:
        """This ``item``'s answer from one ``run`` of every item of ``kind``
        asked for at the same moment.

        A batch's effects start together, so they reach their first await in
        the same turn of the loop (and resume together when a shared call,
        such as a bulk send, answers them all): what each would ask on its own
        (a read or a write per event) is gathered until that turn ends, then
        ``run`` (the first caller's) gets the items in the order asked and
        answers each in that order. If ``run`` fails, every caller raises.
        """
        gathering = self._gathering.get(kind)
        if gathering is None:
            gathering = self._gathering[kind] = _Gathering(run)
            asyncio.get_running_loop().call_soon(self._run_gathered, kind)
        index = len(gathering.items)
        gathering.items.append(item)
        answers = await asyncio.shield(gathering.answers)
        return answers[index]  # type: ignore[no-any-return]

    def _run_gathered(self, kind: Any) -> None:
        gathering = self._gathering.pop(kind)  # later callers gather anew
        task = asyncio.ensure_future(gathering.run(gathering.items))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        task.add_done_callback(gathering.settle)


class _Gathering(Generic[K, V]):
    """The items of one ``EffectScope.together`` call, and their answers to come."""

    def __init__(self, run: Callable[[list[K]], Awaitable[Sequence[V]]]) -> None:
        self.run = run
        self.items: list[K] = []
        self.answers: asyncio.Future[Sequence[V]] = asyncio.get_running_loop().create_future()
        # Read even when every caller was cancelled: no "never retrieved" warning.
        self.answers.add_done_callback(lambda done: done.cancelled() or done.exception())

    def settle(self, task: asyncio.Future[Sequence[V]]) -> None:
        if task.cancelled():
            self.answers.cancel()
        elif (error := task.exception()) is not None:
            self.answers.set_exception(error)
        else:
            self.answers.set_result(task.result())


Effect = Callable[[Event, EffectScope], Awaitable[None]]
"""A side effect of one event, run after its ``apply`` committed, outside any
transaction. At least once per event: it must be idempotent, ideally through
a key the callee deduplicates on. Raise to retry (the event comes back and
only the effect runs again)."""


@dataclass(frozen=True)
class Handler:
    """How a consumer handles one event type: local writes, then a side effect."""

    apply: Apply | None = None
    effect: Effect | None = None


def as_handler(handler: Handler | Apply) -> Handler:
    """A plain coroutine function is a handler with local writes only."""
    return handler if isinstance(handler, Handler) else Handler(apply=handler)


@dataclass(frozen=True)
class Subscription:
    """One consumer: its queue (unprefixed topology name), database and handlers.

    ``database`` names the consumer's own SQLite file / PostgreSQL schema;
    ``migrations`` create its tables (the runtime adds the inbox table itself).
    A handler is a ``Handler`` or, for local writes only, an ``Apply``
    function. An event type the queue delivers but ``handlers`` lacks is
    acknowledged and counted as ignored. ``identity`` is the service identity
    (certificate) its handlers' calls present: the consumer's registered
    name, else ``name``.
    """

    name: str
    queue: str
    database: str
    migrations: Sequence[Migration]
    handlers: Mapping[str, Handler | Apply]
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
    extended: int = 0  # visibility extensions of batches still being handled
    effects_retried: int = 0  # redelivered events whose effect ran again
    batches: int = 0
    lingered: int = 0  # receives put off after a partial batch, to let a fuller one form
    by_type: dict[str, int] = field(default_factory=dict)
