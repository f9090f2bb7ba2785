"""Writing inside the caller's unit of work, or in one of our own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ec_recommend.platform.storage.database import Database, UnitOfWork


@asynccontextmanager
async def writing(db: Database, uow: UnitOfWork | None) -> AsyncIterator[UnitOfWork]:
    """The caller's unit of work (it commits), or a new one committed here.

    An event consumer passes its own (holding the inbox row) so the
    projection write and the dedup mark commit together.
    """
    if uow is not None:
        yield uow
        return
    async with db.unit_of_work() as own:
        yield own
        await own.commit()
