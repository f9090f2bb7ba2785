"""Whether every event of a local run has been handled, read from outside.

Benches and tests that count "per order with every event handled" wait for
this: no event left unpublished in any outbox (read from the services' own
stores) and no message left in any subscriber queue, visible or received but
not yet deleted (read from the local broker's ``/_ec/calls`` report, so the
reader makes no broker calls that would be counted). Messages parked with a
delay are not events in flight; a message in a dead-letter queue has been
handled (given up on) and is reported apart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import sqlalchemy as sa

from ec_recommend.config import StorageConfig
from ec_recommend.platform.events.outbox import outbox
from ec_recommend.platform.storage import Database, open_database
from ec_recommend.runtime.broker_calls import CALLS_PATH

# The services that record events in an outbox (``env.outboxes`` in their builds).
OUTBOX_SERVICES = ("user", "product", "order")
_SETTLED_POLLS = 2  # a drained state seen twice in a row, so an event in hand is not missed


@dataclass(frozen=True)
class BrokerReport:
    calls: dict[str, dict[str, int]]
    queues: dict[str, dict[str, int]]

    def in_flight(self) -> int:
        """Messages in subscriber queues that are visible or received but not deleted."""
        return sum(
            depth["visible"] + depth["in_flight"]
            for name, depth in self.queues.items()
            if not is_dead_letter(name)
        )

    def dead_letters(self) -> int:
        return sum(
            depth["visible"] + depth["in_flight"]
            for name, depth in self.queues.items()
            if is_dead_letter(name)
        )

    def parked(self) -> int:
        """Messages sent with a delay that has not passed yet."""
        return sum(depth["delayed"] for depth in self.queues.values())


def is_dead_letter(queue_name: str) -> bool:
    return queue_name.endswith("dlq")


async def broker_report(session: aiohttp.ClientSession, endpoint_url: str) -> BrokerReport:
    async with session.get(endpoint_url + CALLS_PATH) as reply:
        reply.raise_for_status()
        raw: dict[str, Any] = await reply.json()
    return BrokerReport(calls=raw["calls"], queues=raw.get("queues", {}))


def calls_between(before: BrokerReport, after: BrokerReport) -> dict[str, dict[str, int]]:
    """Calls served between two reports, ``{service: {action: n}}`` (zeros left out)."""
    made: dict[str, dict[str, int]] = {}
    for service, actions in after.calls.items():
        for action, count in actions.items():
            delta = count - before.calls.get(service, {}).get(action, 0)
            if delta:
                made.setdefault(service, {})[action] = delta
    return made


async def _unpublished(databases: Mapping[str, Database]) -> int:
    query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
    pending = 0
    for database in databases.values():
        async with database.reading() as conn:
            pending += int((await conn.execute(query)).scalar_one())
    return pending


@dataclass(frozen=True)
class Settled:
    """The broker's report once everything was handled, and when that was
    first seen (``time.perf_counter()`` after the first drained poll)."""

    report: BrokerReport
    drained_at: float


class Quiescence:
    """Reads of the outboxes and the broker's report, held open so that a
    bench's wait measures the system draining, not the reader connecting."""

    def __init__(
        self,
        unpublished: Callable[[], Awaitable[int]],
        report: Callable[[], Awaitable[BrokerReport]],
    ) -> None:
        self._unpublished = unpublished
        self._report = report

    async def settled(self, *, timeout: float, interval: float = 0.1) -> Settled:
        """Poll until every outbox is empty and every subscriber queue drained,
        seen in ``_SETTLED_POLLS`` polls in a row. ``TimeoutError`` past ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        drained_at: float | None = None
        seen = 0
        while True:
            pending = await self._unpublished()
            report = await self._report()
            queued = report.in_flight()
            if pending == 0 and queued == 0:
                seen += 1
                drained_at = time.perf_counter() if drained_at is None else drained_at
                if seen >= _SETTLED_POLLS:
                    return Settled(report, drained_at)
            else:
                seen, drained_at = 0, None
            if loop.time() > deadline:
                raise TimeoutError(
                    f"{pending} event(s) unpublished, {queued} message(s) queued "
                    f"after {timeout:.0f}s"
                )
            await asyncio.sleep(interval)


@asynccontextmanager
async def quiescence(storage: StorageConfig, broker_url: str) -> AsyncIterator[Quiescence]:
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        databases = {
            name: await stack.enter_async_context(
                open_database(storage, name, [], pool_group="quiescence")
            )
            for name in OUTBOX_SERVICES
        }
        yield Quiescence(
            partial(_unpublished, databases), partial(broker_report, session, broker_url)
        )


async def wait_until_handled(
    storage: StorageConfig,
    broker_url: str,
    *,
    timeout: float,
    interval: float = 0.1,
) -> BrokerReport:
    """Poll until every outbox is empty and every subscriber queue drained;
    returns the broker's report at that point. ``TimeoutError`` past ``timeout``."""
    async with quiescence(storage, broker_url) as reader:
        return (await reader.settled(timeout=timeout, interval=interval)).report
