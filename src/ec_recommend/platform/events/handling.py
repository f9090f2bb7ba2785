"""Handling one received batch: one transaction for the batch, effects after it.

See ``consumer`` for the guarantees. ``handle_batch`` is the part of the
worker that touches the consumer's database and its handlers, not SQS: it
says per event whether its message is done (delete it) or failed (let it
come back).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from ec_recommend.platform.events.consumer import EffectScope, Handler
from ec_recommend.platform.events.envelope import Event
from ec_recommend.platform.events.inbox import (
    Claimed,
    claim_batch,
    effects_done,
    mark_effects_pending,
)
from ec_recommend.platform.rpc.context import CallContext, VarScope, call_scope
from ec_recommend.platform.storage import Database

log = logging.getLogger(__name__)

HANDLED = "handled"
DUPLICATE = "duplicates"
IGNORED = "ignored"
FAILED = "failed"


@dataclass
class Outcome:
    """What became of one event of a batch; ``FAILED`` ones carry the error."""

    status: str = HANDLED
    error: BaseException | None = None
    effect_rerun: bool = False  # applied earlier; only its pending effect ran now

    @property
    def done(self) -> bool:
        return self.status != FAILED


Phase = Callable[[int], AbstractContextManager[object]]
"""Entered around each step taken for the event at a position (its span)."""


@contextmanager
def _no_phase(index: int) -> Iterator[object]:
    yield None


def plan(
    events: Sequence[Event], handlers: Mapping[str, Handler]
) -> tuple[list[int], list[Outcome]]:
    """Which positions to apply (the first of each handled event id), and the outcomes so far.

    Events without a handler are ignored; a second copy of an id within the
    batch is a duplicate of the first.
    """
    outcomes = [Outcome() for _ in events]
    firsts: list[int] = []
    seen: set[str] = set()
    for index, event in enumerate(events):
        if event.type not in handlers:
            outcomes[index].status = IGNORED
        elif event.id in seen:
            outcomes[index].status = DUPLICATE
        else:
            seen.add(event.id)
            firsts.append(index)
    return firsts, outcomes


async def handle_batch(
    db: Database,
    consumer: str,
    handlers: Mapping[str, Handler],
    events: Sequence[Event],
    phase: Phase = _no_phase,
) -> list[Outcome]:
    """Apply ``events`` in one transaction, then run their effects; an outcome per event.

    ``phase(i)`` is entered around everything done for event ``i`` (its
    span). If the batch transaction fails, each event is applied on its own,
    so one bad event holds back only itself.
    """
    firsts, outcomes = plan(events, handlers)
    if not firsts:
        return outcomes
    effects_due: set[int] = set()
    try:
        applied = await _apply(db, consumer, handlers, events, firsts, phase)
        _settle(events, firsts, applied, outcomes, effects_due)
    except Exception as exc:
        if len(firsts) == 1:
            outcomes[firsts[0]] = Outcome(FAILED, exc)
        else:
            for index in firsts:
                try:
                    applied = await _apply(db, consumer, handlers, events, [index], phase)
                except Exception as exc:
                    outcomes[index] = Outcome(FAILED, exc)
                else:
                    _settle(events, [index], applied, outcomes, effects_due)
    due = [index for index in firsts if index in effects_due]
    await _run_effects(db, consumer, handlers, events, due, outcomes, phase)
    return outcomes


async def _apply(
    db: Database,
    consumer: str,
    handlers: Mapping[str, Handler],
    events: Sequence[Event],
    indices: Sequence[int],
    phase: Phase,
) -> tuple[Claimed, set[str]]:
    """One transaction: claim, apply, mark pending effects; the claim and the ids marked."""
    marked: set[str] = set()
    async with db.unit_of_work() as uow:
        claimed = await claim_batch(
            uow, consumer, [(events[i].id, events[i].type) for i in indices]
        )
        for index in indices:
            event = events[index]
            if event.id not in claimed.new:
                continue
            handler = handlers[event.type]
            wanted: bool | None = None
            if handler.apply is not None:
                with phase(index), _scope_of(event):
                    wanted = await handler.apply(event, uow)
            if handler.effect is not None and wanted is not False:
                marked.add(event.id)
        await mark_effects_pending(uow, consumer, marked)
        await uow.commit()
    return claimed, marked


def _settle(
    events: Sequence[Event],
    indices: Sequence[int],
    applied: tuple[Claimed, set[str]],
    outcomes: list[Outcome],
    effects_due: set[int],
) -> None:
    claimed, marked = applied
    for index in indices:
        event_id = events[index].id
        if event_id in claimed.effect_pending:
            outcomes[index] = Outcome(HANDLED, effect_rerun=True)
            effects_due.add(index)
        elif event_id not in claimed.new:
            outcomes[index] = Outcome(DUPLICATE)
        elif event_id in marked:
            effects_due.add(index)


async def _run_effects(
    db: Database,
    consumer: str,
    handlers: Mapping[str, Handler],
    events: Sequence[Event],
    due: Sequence[int],
    outcomes: list[Outcome],
    phase: Phase,
) -> None:
    if not due:
        return
    scope = EffectScope(db)

    async def run(index: int) -> None:
        event = events[index]
        effect = handlers[event.type].effect
        assert effect is not None
        with phase(index), _scope_of(event):
            await effect(event, scope)

    results = await asyncio.gather(*(run(i) for i in due), return_exceptions=True)
    done: list[str] = []
    for index, result in zip(due, results, strict=True):
        if isinstance(result, Exception):
            outcomes[index] = Outcome(FAILED, result)
        elif isinstance(result, BaseException):
            raise result  # cancelled: the marks stay, the effects run again
        else:
            done.append(events[index].id)
    try:
        await effects_done(db, consumer, done)
    except Exception:
        # The effects ran; a redelivery runs them again (at least once).
        log.warning("%s: could not clear %d pending effects", consumer, len(done), exc_info=True)


def _scope_of(event: Event) -> VarScope[CallContext]:
    """The event's call scope (its correlation id as the request id), entered
    around each step for it: a scope object, not a generator, per event."""
    return call_scope(CallContext(request_id=event.correlation_id or event.id))
