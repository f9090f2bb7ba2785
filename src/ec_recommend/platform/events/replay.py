"""Replaying the outbox: sent events published again after a broker lost them.

The relay marks a row sent once SNS accepts it; a local broker (moto) that
dies takes what it held with it. ``mark_unsent`` turns the rows sent since a
time back into pending ones, so the relay publishes them again with the same
event ids; every consumer's inbox makes the second delivery a no-op.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ec_recommend.platform.events.outbox import outbox
from ec_recommend.platform.storage import Database

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class BadSince(ValueError):
    """``--since`` is neither an ISO 8601 time nor a duration such as ``15m``."""


def parse_since(text: str, now: datetime) -> datetime:
    """An ISO 8601 time (UTC when no offset is given) or a duration back from ``now``."""
    duration = _DURATION.match(text)
    if duration:
        seconds = float(duration.group(1)) * _UNITS[duration.group(2)]
        return now - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadSince(
            f"--since: expected an ISO 8601 time (2026-11-30T12:00:00Z) or a duration "
            f"(90s, 15m, 2h, 1d), got {text!r}"
        ) from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if when > now:
        raise BadSince(f"--since: {text!r} is in the future")
    return when


async def mark_unsent(db: Database, since: datetime | None) -> int:
    """Rows sent at or after ``since`` (None: every sent row kept) become pending again."""
    sent = outbox.c.sent_at.is_not(None)
    where = sent if since is None else sa.and_(sent, outbox.c.sent_at >= since)
    async with db.unit_of_work() as uow:
        result = await uow.execute(sa.update(outbox).where(where).values(sent_at=None))
        await uow.commit()
    return int(result.rowcount or 0)
