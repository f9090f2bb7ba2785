#!/usr/bin/env python
"""Outbox relay: how long a backlog takes to drain to SNS on moto's server.

``--events`` order.paid rows (fanned out to five queues, as in ``up``) are
written to an order database's outbox while no relay runs, as after a broker
outage; then one relay starts and the time until no row is pending is taken.
Meanwhile a bare receive/delete loop empties each subscriber queue, as the
consumers of ``up`` do: moto's SendMessage reads every message of the queue
to compute its attributes, so queues left to fill would make moto, not the
relay, what is measured.
Repeated ``--rounds`` times, each on a fresh database and a fresh moto (so
no round pays for the messages of the last); prints each run and the median.

Usage: .venv/bin/python scripts/bench/outbox_drain.py [--events 1000] [--rounds 3] [--concurrency N]
                                           [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend.config import EventsConfig, StorageConfig
from ec_recommend.platform.events.aws import aws_client
from ec_recommend.platform.events.outbox import outbox_migration, record_event
from ec_recommend.platform.events.provision import provision
from ec_recommend.platform.events.relay import OutboxRelay
from ec_recommend.platform.events.topology import load_topology
from ec_recommend.platform.storage import Database, open_database
from ec_recommend.runtime.local_aws import moto_server


async def _backlog(db: Database, count: int) -> None:
    for start in range(0, count, 100):
        async with db.unit_of_work() as uow:
            for i in range(start, min(start + 100, count)):
                order = pb_order.Order(id=f"o-{i}", user_id="u-bench", status="PAID")
                data = pb.OrderPaid(order=order, payment_id=f"pay-{i}")
                await record_event(uow, "order.paid", data, source="bench")
            await uow.commit()


async def _consume(sqs: Any, url: str) -> None:
    """Receive and delete until cancelled (a consumer that does nothing else)."""
    while True:
        response = await sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        messages = response.get("Messages", [])
        if messages:
            await sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )


async def _drain(
    storage: StorageConfig, config: EventsConfig, queues: list[str], count: int, name: str
) -> float:
    async with (
        open_database(storage, name, [outbox_migration(1)]) as db,
        aws_client("sqs", config) as sqs,
    ):
        await _backlog(db, count)
        consumers = [asyncio.create_task(_consume(sqs, url)) for url in queues]
        try:
            started = time.perf_counter()
            async with OutboxRelay(db, config, load_topology()) as relay:
                while True:
                    if await relay.pending() == 0:
                        return time.perf_counter() - started
                    await asyncio.sleep(0.02)
        finally:
            for task in consumers:
                task.cancel()
            await asyncio.gather(*consumers, return_exceptions=True)


async def _round(args: argparse.Namespace, round_: int) -> float:
    async with moto_server() as aws:
        config = EventsConfig(
            enabled=True,
            endpoint_url=aws.endpoint_url,
            region=aws.region,
            name_prefix=f"drain{uuid.uuid4().hex[:6]}-",
            **({"relay_concurrency": args.concurrency} if args.concurrency else {}),  # type: ignore[arg-type]
        )
        report = await provision(config, load_topology())
        queues = list(report.queue_urls.values())
        with tempfile.TemporaryDirectory() as data_dir:
            storage = StorageConfig(
                data_dir=Path(data_dir),
                database_url=args.postgres,
                schema_prefix=f"drain{uuid.uuid4().hex[:6]}_" if args.postgres else "",
            )
            return await _drain(storage, config, queues, args.events, f"order{round_}")


async def main(args: argparse.Namespace) -> None:
    times: list[float] = []
    for round_ in range(args.rounds):
        times.append(await _round(args, round_))
        print(
            f"round {round_ + 1}: {args.events} events drained in {times[-1]:.2f} s "
            f"({args.events / times[-1]:.0f} events/s)",
            flush=True,
        )
    median = statistics.median(times)
    print(
        f"drain of {args.events} events (median of {args.rounds}): {median:.2f} s, "
        f"{args.events / median:.0f} events/s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--concurrency", type=int, default=0, help="relay_concurrency (default: the setting's)"
    )
    parser.add_argument("--postgres", default=None, help="PostgreSQL URL (default: SQLite)")
    asyncio.run(main(parser.parse_args()))
