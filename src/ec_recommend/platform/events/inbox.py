"""The inbox: which events a consumer has applied, so each takes effect once."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.storage import Database, UnitOfWork

inbox_metadata = sa.MetaData()

inbox = sa.Table(
    "event_inbox",
    inbox_metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(256), primary_key=True),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
)


async def ensure_inbox(db: Database) -> None:
    """Create the inbox table if missing (outside the consumer's own migrations)."""
    async with db.unit_of_work() as uow:
        await uow.connection.run_sync(inbox_metadata.create_all)
        await uow.commit()


async def claim(uow: UnitOfWork, consumer: str, event_id: str, event_type: str) -> bool:
    """Record the event as applied within ``uow``; False if it already was.

    On PostgreSQL a concurrent claim of the same event waits on the primary
    key until the first commits, then fails here: the effect stays single.
    """
    seen = await uow.execute(
        sa.select(inbox.c.event_id).where(
            inbox.c.consumer == consumer, inbox.c.event_id == event_id
        )
    )
    if seen.first() is not None:
        return False
    try:
        await uow.execute(
            sa.insert(inbox).values(
                consumer=consumer, event_id=event_id, event_type=event_type, handled_at=utcnow()
            )
        )
    except IntegrityError:
        return False  # the transaction is spoiled; the caller rolls back
    return True


async def applied(db: Database, consumer: str) -> int:
    """How many events ``consumer`` has applied (for tests and metrics)."""
    async with db.reading() as conn:
        query = sa.select(sa.func.count()).select_from(inbox).where(inbox.c.consumer == consumer)
        return int((await conn.execute(query)).scalar_one())
