"""Transactional outbox: events are written with the state change they describe.

A service calls ``record_event(uow, ...)`` inside the unit of work that
changes its state, so the event commits or rolls back with it. The relay
(``relay.OutboxRelay``) publishes pending rows to SNS later; a crash between
commit and publish loses nothing, and a crash between publish and marking
sent publishes again (consumers dedupe on the event id).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import betterproto2
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.events.envelope import CORRELATION_ID, new_encoded_event
from ec_recommend.platform.rpc.context import current_call
from ec_recommend.platform.storage import Migration, UnitOfWork
from ec_recommend.platform.storage.statements import prefixed_binds
from ec_recommend.platform.telemetry.tracing import trace_headers

outbox_metadata = sa.MetaData()

outbox = sa.Table(
    "event_outbox",
    outbox_metadata,
    # seq orders publishing; id is the event id consumers dedupe on.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
)


# Built once, run with each event's row (see ``platform.storage.statements``).
_ADD_EVENT = sa.insert(outbox)
# The columns of an ``event_row``.
EVENT_ROW_COLUMNS = ("id", "event_type", "body", "created_at", "sent_at", "attempts")


def event_row_binds(prefix: str) -> dict[str, Any]:
    """An ``event_row``'s values as parameters named ``prefix`` + column, for a
    statement that inserts the row among its other writes (``prefixed``)."""
    return prefixed_binds(outbox, prefix, EVENT_ROW_COLUMNS)


def outbox_migration(version: int) -> Migration:
    """The migration step that adds the outbox table to a service's schema."""

    async def apply(conn: AsyncConnection) -> None:
        await conn.run_sync(outbox_metadata.create_all)

    return Migration(version, apply)


def event_row(
    event_type: str,
    data: betterproto2.Message,
    *,
    source: str,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The outbox row of a new event (its id is ``row["id"]``), for a writer
    that inserts it itself, in the statement of the change it describes.

    The correlation id defaults to the request id of the current call; the
    current trace context is kept so the event's spans join the request's trace.
    """
    merged = {**trace_headers(), **(metadata or {})}
    request_id = current_call().request_id
    if request_id:
        merged.setdefault(CORRELATION_ID, request_id)
    event, body = new_encoded_event(event_type, data, source=source, metadata=merged)
    return {
        "id": event.id,
        "event_type": event.type,
        "body": body,
        "created_at": utcnow(),
        "sent_at": None,
        "attempts": 0,
    }


async def record_event(
    uow: UnitOfWork,
    event_type: str,
    data: betterproto2.Message,
    *,
    source: str,
    metadata: Mapping[str, str] | None = None,
) -> str:
    """Add an event to the outbox within ``uow``; returns the event id."""
    row = event_row(event_type, data, source=source, metadata=metadata)
    await record_row(uow, row)
    return str(row["id"])


async def record_row(uow: UnitOfWork, row: Mapping[str, Any]) -> None:
    """Add an ``event_row`` to the outbox within ``uow``."""
    await uow.execute(_ADD_EVENT, row)
