"""Since when the outbox must be replayed after the local broker started afresh.

moto keeps everything in memory, so a new child holds none of the messages
the last one had not delivered yet. ``<data-dir>/events-replay-from`` holds
the time from which sent events may not have reached their subscribers:
while ``up`` runs, the start of its broker; after a clean stop that drained
every queue, the time of that stop. The next start replays from there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ec_recommend.config import EventsConfig
from ec_recommend.platform.events.aws import aws_client, queue_url
from ec_recommend.platform.events.relay import OutboxRelay
from ec_recommend.platform.events.replay import mark_unsent
from ec_recommend.platform.events.topology import load_topology

log = logging.getLogger(__name__)

MARK_FILE = "events-replay-from"
# Delayed messages are timers (payment deadlines), not undelivered events; the
# order service's sweep stands in for the ones a broker loses.
_DEPTHS = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]


def read_mark(data_dir: Path) -> datetime | None:
    """The recorded time, or None when there is none (first run): replay all that is kept."""
    try:
        return datetime.fromisoformat((data_dir / MARK_FILE).read_text(encoding="utf-8").strip())
    except (FileNotFoundError, ValueError):
        return None


def write_mark(data_dir: Path, when: datetime) -> None:
    path = data_dir / MARK_FILE
    partial = path.with_suffix(".partial")
    partial.write_text(when.isoformat(), encoding="utf-8")
    partial.replace(path)  # a reader never sees half a time


async def replay(relays: Sequence[OutboxRelay], since: datetime | None) -> int:
    """Rows each relay sent since ``since`` are published again; returns how many."""
    total = 0
    for relay in relays:
        count = await mark_unsent(relay.db, since)
        if count:
            log.info("%s: replaying %d event(s) sent since %s", relay.db.service, count, since)
        total += count
        relay.wake()
    return total


async def drained(relays: Sequence[OutboxRelay], config: EventsConfig, timeout: float) -> bool:
    """Wait up to ``timeout`` until no row is pending and every subscriber queue is empty."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    queues = [queue.name for queue in load_topology(config.topology_path).queues]
    async with aws_client("sqs", config) as sqs:
        urls = [await queue_url(sqs, config, name) for name in queues]
        while True:
            pending = sum([await relay.pending() for relay in relays])
            held = 0
            for url in urls:
                reply = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=_DEPTHS)
                held += sum(int(reply["Attributes"].get(name, 0)) for name in _DEPTHS)
            if pending == 0 and held == 0:
                return True
            if loop.time() >= deadline:
                log.warning(
                    "stopping with %d event(s) unpublished and %d undelivered; "
                    "the next start replays them",
                    pending,
                    held,
                )
                return False
            await asyncio.sleep(0.1)
