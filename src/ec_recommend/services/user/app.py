"""Composition of the user service: its database and its gRPC handler."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.registry import ServiceEnv
from ec_recommend.services.user.service import UserService
from ec_recommend.services.user.store import MIGRATIONS, UserStore


@asynccontextmanager
async def build(env: ServiceEnv) -> AsyncIterator[Sequence[object]]:
    async with open_database(env.config.storage, "user", MIGRATIONS) as db:
        env.outboxes.append(db)  # the host relays its events
        yield [UserService(UserStore(db))]
