"""The batch handling logic and the handler/effect API, with an in-memory inbox (no I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend.platform.events import handling
from ec_recommend.platform.events.consumer import EffectScope, Handler, as_handler
from ec_recommend.platform.events.deletes import delete_messages, set_visibilities
from ec_recommend.platform.events.envelope import CORRELATION_ID, Event, new_event
from ec_recommend.platform.events.handling import DUPLICATE, FAILED, HANDLED, IGNORED
from ec_recommend.platform.events.inbox import Claimed
from ec_recommend.platform.rpc.context import CallContext, call_scope, current_call

pytestmark = pytest.mark.asyncio


def product_event(product_id: str = "p") -> Event:
    return new_event("product.updated", pb.ProductUpdated(product_id=product_id), source="t")


class FakeUnitOfWork:
    def __init__(self, store: FakeInbox) -> None:
        self.store = store
        self.claimed: set[str] = set()
        self.marked: set[str] = set()
        self.committed = False

    async def commit(self) -> None:
        self.store.inbox |= self.claimed
        self.store.pending |= self.marked
        self.committed = True


class FakeInbox:
    """A consumer database: the inbox, pending marks and how many transactions ran."""

    def __init__(self) -> None:
        self.inbox: set[str] = set()
        self.pending: set[str] = set()
        self.transactions = 0
        self.cleared: list[set[str]] = []

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[FakeUnitOfWork]:
        self.transactions += 1
        yield FakeUnitOfWork(self)


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> FakeInbox:
    store = FakeInbox()

    async def claim_batch(
        uow: FakeUnitOfWork, consumer: str, events: Sequence[tuple[str, str]]
    ) -> Claimed:
        ids = {event_id for event_id, _ in events}
        new = ids - store.inbox
        uow.claimed |= new
        return Claimed(frozenset(new), frozenset(ids & store.pending))

    async def mark(uow: FakeUnitOfWork, consumer: str, ids: Collection[str]) -> None:
        uow.marked |= set(ids)

    async def done(db: FakeInbox, consumer: str, ids: Collection[str]) -> None:
        store.pending -= set(ids)
        store.cleared.append(set(ids))

    monkeypatch.setattr(handling, "claim_batch", claim_batch)
    monkeypatch.setattr(handling, "mark_effects_pending", mark)
    monkeypatch.setattr(handling, "effects_done", done)
    return store


async def handle(db: FakeInbox, handlers: dict[str, Handler], events: list[Event]) -> list[str]:
    outcomes = await handling.handle_batch(db, "c", handlers, events)  # type: ignore[arg-type]
    return [o.status for o in outcomes]


async def test_a_plain_function_is_a_handler_with_local_writes_only() -> None:
    async def apply(event: Event, uow: Any) -> None:
        return None

    assert as_handler(apply) == Handler(apply=apply)
    handler = Handler(effect=lambda e, s: apply(e, s))  # type: ignore[arg-type,return-value]
    assert as_handler(handler) is handler


async def test_one_transaction_per_batch_then_the_effects(db: FakeInbox) -> None:
    applied: list[str] = []
    effected: list[str] = []

    async def apply(event: Event, uow: Any) -> None:
        assert not uow.committed  # local writes inside the batch's transaction
        applied.append(event.id)

    async def effect(event: Event, scope: EffectScope) -> None:
        assert event.id in db.inbox and event.id in db.pending  # after the commit
        effected.append(event.id)

    events = [product_event(str(i)) for i in range(5)]
    handlers = {"product.updated": Handler(apply, effect)}
    assert await handle(db, handlers, events) == [HANDLED] * 5
    assert db.transactions == 1
    assert applied == effected == [e.id for e in events]
    assert db.pending == set()
    assert db.cleared == [{e.id for e in events}]  # one clearing for the batch


async def test_duplicates_and_unhandled_types_within_a_batch(db: FakeInbox) -> None:
    calls: list[str] = []

    async def apply(event: Event, uow: Any) -> None:
        calls.append(event.id)

    first, second = product_event("a"), product_event("b")
    other = new_event("user.created", pb.UserCreated(user_id="u"), source="t")
    db.inbox.add(second.id)  # applied in an earlier batch
    statuses = await handle(db, {"product.updated": Handler(apply)}, [first, first, second, other])
    assert statuses == [HANDLED, DUPLICATE, DUPLICATE, IGNORED]
    assert calls == [first.id]


async def test_a_failing_event_is_retried_alone_and_the_rest_commit(db: FakeInbox) -> None:
    async def apply(event: Event, uow: Any) -> None:
        if event.data.product_id == "bad":  # type: ignore[union-attr]
            raise RuntimeError("poison")

    events = [product_event("a"), product_event("bad"), product_event("c")]
    statuses = await handle(db, {"product.updated": Handler(apply)}, events)
    assert statuses == [HANDLED, FAILED, HANDLED]
    assert db.inbox == {events[0].id, events[2].id}
    assert db.transactions == 1 + 3  # the batch rolled back, then one each


async def test_a_pending_effect_runs_again_without_the_local_writes(db: FakeInbox) -> None:
    applied, attempts = 0, 0

    async def apply(event: Event, uow: Any) -> None:
        nonlocal applied
        applied += 1

    async def effect(event: Event, scope: EffectScope) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("SES unreachable")

    handlers = {"product.updated": Handler(apply, effect)}
    event = product_event()
    assert await handle(db, handlers, [event]) == [FAILED]
    assert event.id in db.inbox and event.id in db.pending  # committed, effect pending
    outcomes = await handling.handle_batch(db, "c", handlers, [event])  # type: ignore[arg-type]
    assert [(o.status, o.effect_rerun) for o in outcomes] == [(HANDLED, True)]
    assert (applied, attempts) == (1, 2)
    assert db.pending == set()
    assert await handle(db, handlers, [event]) == [DUPLICATE]  # done: nothing runs
    assert (applied, attempts) == (1, 2)


async def test_apply_may_decline_the_effect(db: FakeInbox) -> None:
    effected: list[str] = []

    async def book(event: Event, uow: Any) -> bool:
        return event.data.product_id == "new"  # type: ignore[union-attr]

    async def effect(event: Event, scope: EffectScope) -> None:
        effected.append(event.data.product_id)  # type: ignore[union-attr]

    events = [product_event("new"), product_event("old")]
    assert await handle(db, {"product.updated": Handler(book, effect)}, events) == [HANDLED] * 2
    assert effected == ["new"]
    assert db.pending == set()


async def test_the_effects_of_a_batch_share_their_lookups() -> None:
    scope = EffectScope(db=None)  # type: ignore[arg-type]
    lookups = 0

    async def lookup() -> str:
        nonlocal lookups
        lookups += 1
        return "a@example.com"

    assert [await scope.once(("user", "u1"), lookup) for _ in range(3)] == ["a@example.com"] * 3
    assert lookups == 1

    async def broken() -> str:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await scope.once(("user", "u2"), broken)
    assert await scope.once(("user", "u2"), lookup) == "a@example.com"  # a failure is not kept
    assert lookups == 2


async def test_the_effects_of_a_batch_ask_together() -> None:
    scope = EffectScope(db=None)  # type: ignore[arg-type]
    runs: list[list[str]] = []

    async def sent(keys: list[str]) -> list[bool]:
        runs.append(list(keys))
        return [key.startswith("old") for key in keys]

    async def effect(key: str) -> bool:
        return await scope.together("sent?", key, sent)

    keys = ["new-1", "old-2", "new-3"]
    assert await asyncio.gather(*(effect(k) for k in keys)) == [False, True, False]
    assert runs == [keys]
    # Effects that resume together (a bulk send answered them all) gather again.
    assert await asyncio.gather(effect("old-4"), effect("new-5")) == [True, False]
    assert runs == [keys, ["old-4", "new-5"]]

    async def down(keys: list[str]) -> list[bool]:
        raise ConnectionError("down")

    outcomes = await asyncio.gather(
        *(scope.together("sent?", k, down) for k in keys), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [ConnectionError] * 3

    running, release = asyncio.Event(), asyncio.Event()

    async def held(keys: list[str]) -> list[str]:
        running.set()
        await release.wait()
        return keys

    # One caller given up (its effect cancelled) does not call the others' off.
    first = asyncio.ensure_future(scope.together("held", "a", held))
    second = asyncio.ensure_future(scope.together("held", "b", held))
    await running.wait()  # both asked: the call is under way
    first.cancel()
    release.set()
    assert await second == "b"
    assert first.cancelled()


class RecordingSqs:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def delete_message_batch(self, QueueUrl: str, Entries: list[Any]) -> dict[str, Any]:
        self.calls.append(("delete", len(Entries)))
        return {}

    async def change_message_visibility_batch(
        self, QueueUrl: str, Entries: list[Any]
    ) -> dict[str, Any]:
        self.calls.append(("visibility", len(Entries)))
        return {}


async def test_acknowledgements_go_out_ten_at_a_time() -> None:
    sqs = RecordingSqs()
    await delete_messages(sqs, "url", "c", [f"r{i}" for i in range(12)])
    await delete_messages(sqs, "url", "c", ["r"])
    assert await set_visibilities(sqs, "url", "c", [("r", 0)] * 3)
    assert sqs.calls == [("delete", 10), ("delete", 2), ("delete", 1), ("visibility", 3)]


async def test_each_step_runs_as_a_call_with_the_events_correlation_id(db: FakeInbox) -> None:
    """Calls an apply or effect makes (and its logs) carry the event's correlation
    id, or its own id without one; outside the steps the caller's call stands."""
    seen: list[tuple[str, str]] = []

    async def apply(event: Event, uow: Any) -> None:
        seen.append(("apply", current_call().request_id))

    async def effect(event: Event, scope: EffectScope) -> None:
        seen.append(("effect", current_call().request_id))

    correlated = new_event(
        "product.updated",
        pb.ProductUpdated(product_id="c"),
        source="t",
        metadata={CORRELATION_ID: "req-1"},
    )
    plain = product_event("p")
    with call_scope(CallContext(request_id="the-worker")):
        await handle(db, {"product.updated": Handler(apply, effect)}, [correlated, plain])
        assert current_call().request_id == "the-worker"
    assert seen == [
        ("apply", "req-1"),
        ("apply", plain.id),
        ("effect", "req-1"),
        ("effect", plain.id),
    ]
