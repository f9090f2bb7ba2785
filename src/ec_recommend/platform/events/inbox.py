"""The inbox: which events a consumer has applied, so each takes effect once.

``event_inbox`` holds a row per applied event. ``event_effects_pending``
marks those whose side effect (``Handler.effect``) has not completed yet:
written in the same transaction as the inbox row, removed once the effect
ran, so a redelivered event whose effect is still pending runs it again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.storage import Database, PerDialect, UnitOfWork, dialect_insert

inbox_metadata = sa.MetaData()

inbox = sa.Table(
    "event_inbox",
    inbox_metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(256), primary_key=True),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
)

effects_pending = sa.Table(
    "event_effects_pending",
    inbox_metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(256), primary_key=True),
)


async def ensure_inbox(db: Database) -> None:
    """Create the inbox tables if missing (outside the consumer's own migrations)."""
    async with db.unit_of_work() as uow:
        await uow.connection.run_sync(inbox_metadata.create_all)
        await uow.commit()


@dataclass(frozen=True)
class Claimed:
    """Which of a batch's event ids are new, and which were applied with an effect pending."""

    new: frozenset[str]
    effect_pending: frozenset[str]


# Built once, run with parameters (see ``platform.storage.statements``).
_CLAIM = PerDialect(
    lambda dialect: (
        dialect_insert(dialect, inbox).on_conflict_do_nothing().returning(inbox.c.event_id)
    )
)
_PENDING_OF = sa.select(effects_pending.c.event_id).where(
    effects_pending.c.consumer == sa.bindparam("consumer"),
    effects_pending.c.event_id.in_(sa.bindparam("event_ids", expanding=True)),
)
_MARK_PENDING = sa.insert(effects_pending)
_CLEAR_PENDING = sa.delete(effects_pending).where(
    effects_pending.c.consumer == sa.bindparam("consumer"),
    effects_pending.c.event_id.in_(sa.bindparam("event_ids", expanding=True)),
)


async def claim_batch(uow: UnitOfWork, consumer: str, events: Sequence[tuple[str, str]]) -> Claimed:
    """Record ``events`` (id, type) as applied within ``uow``; one statement a batch.

    Ids already in the inbox are not new; those of them whose effect is
    still pending are returned as ``effect_pending``. On PostgreSQL a
    concurrent claim of the same event waits on the primary key until the
    first commits, then finds it there: the effect stays single.
    """
    types = dict(events)
    now = utcnow()
    # One statement whatever the batch size (executemany, "insertmanyvalues"),
    # so its compiled form is cached instead of compiled for every batch. Ids
    # in order: two batches claiming the same redelivered events lock their
    # keys in the same order, so they wait for each other, never deadlock.
    inserted = await uow.execute(
        _CLAIM(uow.dialect),
        [
            {"consumer": consumer, "event_id": i, "event_type": t, "handled_at": now}
            for i, t in sorted(types.items())
        ],
    )
    new = {row.event_id for row in inserted}
    seen = sorted(set(types) - new)
    pending: set[str] = set()
    if seen:
        pending = {
            row.event_id
            for row in await uow.execute(_PENDING_OF, {"consumer": consumer, "event_ids": seen})
        }
    return Claimed(frozenset(new), frozenset(pending))


async def mark_effects_pending(uow: UnitOfWork, consumer: str, event_ids: Collection[str]) -> None:
    """Note within ``uow`` that these applied events still have an effect to run."""
    if event_ids:
        await uow.execute(
            _MARK_PENDING, [{"consumer": consumer, "event_id": i} for i in sorted(event_ids)]
        )


async def effects_done(db: Database, consumer: str, event_ids: Collection[str]) -> None:
    """Clear the pending marks of effects that completed (one short transaction)."""
    if not event_ids:
        return
    await db.write(_CLEAR_PENDING, {"consumer": consumer, "event_ids": sorted(event_ids)})


async def claim(uow: UnitOfWork, consumer: str, event_id: str, event_type: str) -> bool:
    """Record one event as applied within ``uow``; False if it already was."""
    try:
        claimed = await claim_batch(uow, consumer, [(event_id, event_type)])
    except IntegrityError:
        return False  # the transaction is spoiled; the caller rolls back
    return event_id in claimed.new


async def applied(db: Database, consumer: str) -> int:
    """How many events ``consumer`` has applied (for tests and metrics)."""
    async with db.reading() as conn:
        query = sa.select(sa.func.count()).select_from(inbox).where(inbox.c.consumer == consumer)
        return int((await conn.execute(query)).scalar_one())


async def pending_effects(db: Database, consumer: str) -> set[str]:
    """Ids of applied events whose effect has not completed (for tests and invariants)."""
    async with db.reading() as conn:
        rows = await conn.execute(
            sa.select(effects_pending.c.event_id).where(effects_pending.c.consumer == consumer)
        )
        return {row.event_id for row in rows}
