#!/usr/bin/env python
"""Event platform benchmarks against moto's server, each with its baseline in the same run.

1. Throughput: ``--messages`` envelopes are put on a queue, then drained
     bare      one aiobotocore loop: ReceiveMessage(10, long poll) then
               DeleteMessageBatch, nothing else (the floor of any consumer)
     runtime   our ConsumerWorker: decode + validate, a unit of work with the
               inbox row per message (SQLite), bounded concurrent handlers,
               visibility extension, batched deletes; its spans and metrics
               as a service makes them, under the tracer provider ``up``
               installs (no exporter: ids, nothing recorded)
   Both run under the garbage collector's settings every service process
   takes once started (``heap.settle``: what startup built frozen out of the
   collector's sight, young collections less often); ``--unsettled`` runs
   with CPython's defaults instead, where a full collection walks the whole
   heap (~100 ms here, ~70 µs a message of a 1,500-message run) whenever one
   happens to fall in a run. Each run prints its full collections.
   The queue is refilled before each run; runs alternate ``--rounds`` times.
   Prints messages/s of each and, what matters (moto dominates the wall
   clock), CPU per message of this process (``getrusage``: moto is a child
   process, not counted) while it drains, and runtime/bare of both: the
   median of each round's own ratio, with their range.
2. Latency: ``--events`` events published one by one to SNS (PublishBatch of 1,
   as the relay does when idle) at ``--rate``/s; each is timed from publish to
   the end of its handler's commit. Prints p50/p99 and receives per event
   (``--linger`` sets the consumer's batch linger: 0 receives at once).

Usage: .venv/bin/python scripts/bench/events.py [--messages 2000] [--rounds 2]
       [--events 300] [--rate 50] [--linger SECONDS] [--unsettled]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend.config import EventsConfig, StorageConfig, TelemetryConfig
from ec_recommend.platform import heap
from ec_recommend.platform.events.aws import aws_client, queue_url
from ec_recommend.platform.events.consumer import Subscription
from ec_recommend.platform.events.envelope import Event, encode, new_event
from ec_recommend.platform.events.provision import provision
from ec_recommend.platform.events.runner import running_consumers
from ec_recommend.platform.events.topology import load_topology
from ec_recommend.platform.storage import UnitOfWork
from ec_recommend.platform.telemetry.export import tracing
from ec_recommend.runtime.local_aws import moto_server

QUEUE = "search-index-queue"


def _full_collections() -> int:
    """Collections of the oldest generation so far (the ones that walk the heap)."""
    return int(gc.get_stats()[2]["collections"])


def _cpu() -> float:
    """CPU seconds of this process so far (all its threads; not the moto child)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _event(i: int) -> str:
    return encode(
        new_event("product.updated", pb.ProductUpdated(product_id=f"p-{i}"), source="bench")
    )


async def _fill(sqs: Any, url: str, count: int) -> None:
    async def batch(start: int) -> None:
        entries = [
            {"Id": str(i), "MessageBody": _event(start + i)} for i in range(min(10, count - start))
        ]
        await sqs.send_message_batch(QueueUrl=url, Entries=entries)

    for chunk in range(0, count, 200):
        await asyncio.gather(*(batch(s) for s in range(chunk, min(chunk + 200, count), 10)))


async def _bare(sqs: Any, url: str, count: int) -> tuple[float, float]:
    """Messages/s and CPU seconds per message of the bare loop."""
    done = 0
    cpu = _cpu()
    started = time.perf_counter()
    while done < count:
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
        done += len(messages)
    return count / (time.perf_counter() - started), (_cpu() - cpu) / count


async def _runtime(
    storage: StorageConfig, config: EventsConfig, count: int, name: str
) -> tuple[float, float]:
    """Messages/s and CPU seconds per message of the runtime, once started.

    Its start (opening its database and SQS client) and stop are one-offs,
    not per message, and the bare loop's client exists already: both are
    left out (they are printed).
    """
    handled = asyncio.Event()
    seen = 0

    async def handler(event: Event, uow: UnitOfWork) -> None:
        nonlocal seen
        seen += 1
        if seen == count:
            handled.set()

    sub = Subscription(name, QUEUE, name, [], {"product.updated": handler})
    before_start = _cpu()
    async with running_consumers(storage, config, [sub]):
        cpu = _cpu()
        started = time.perf_counter()
        await handled.wait()
        elapsed = time.perf_counter() - started
        used = _cpu() - cpu
        stopping = _cpu()
    print(
        f"  runtime start {(cpu - before_start) * 1000:.0f} ms CPU, "
        f"stop {(_cpu() - stopping) * 1000:.0f} ms CPU (not per message)"
    )
    return count / elapsed, used / count


async def _latency(
    storage: StorageConfig, config: EventsConfig, sns: Any, topic_arn: str, events: int, rate: float
) -> tuple[list[float], int]:
    """Latencies, and the batches the consumer received them in."""
    published: dict[str, float] = {}
    latencies: list[float] = []
    all_done = asyncio.Event()

    async def handler(event: Event, uow: UnitOfWork) -> None:
        latencies.append(time.perf_counter() - published[event.id])
        if len(latencies) == events:
            all_done.set()

    sub = Subscription("latency", QUEUE, "latency", [], {"product.updated": handler})
    async with running_consumers(storage, config, [sub]) as (worker,):
        for i in range(events):
            event = new_event("product.updated", pb.ProductUpdated(product_id=f"l-{i}"), source="b")
            published[event.id] = time.perf_counter()
            await sns.publish_batch(
                TopicArn=topic_arn,
                PublishBatchRequestEntries=[
                    {
                        "Id": "0",
                        "Message": encode(event),
                        "MessageAttributes": {
                            "type": {"DataType": "String", "StringValue": event.type}
                        },
                    }
                ],
            )
            await asyncio.sleep(1 / rate)
        await asyncio.wait_for(all_done.wait(), timeout=120)
    return latencies, worker.stats.batches


def _spread(ratios: list[float]) -> str:
    """The median of per-round ratios, with their range."""
    return f"{statistics.median(ratios):.2f} (rounds {min(ratios):.2f}–{max(ratios):.2f})"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    async with moto_server() as aws:
        config = EventsConfig(
            enabled=True,
            endpoint_url=aws.endpoint_url,
            region=aws.region,
            name_prefix=f"bench{uuid.uuid4().hex[:6]}-",
            consumer_wait_seconds=1,
            consumer_concurrency=args.concurrency,
            consumer_batch_linger=args.linger,
        )
        report = await provision(config, load_topology().with_queue_settings(visibility_timeout=30))
        with tempfile.TemporaryDirectory() as data_dir:
            storage = StorageConfig(data_dir=Path(data_dir))
            async with aws_client("sqs", config) as sqs, aws_client("sns", config) as sns:
                url = await queue_url(sqs, config, QUEUE)
                if not args.unsettled:
                    heap.settle()  # as `serve` and `up` do once started
                bare: list[tuple[float, float]] = []
                ours: list[tuple[float, float]] = []
                for round_ in range(args.rounds):
                    await _fill(sqs, url, args.messages)
                    full = _full_collections()
                    bare.append(await _bare(sqs, url, args.messages))
                    bare_full = _full_collections() - full
                    await _fill(sqs, url, args.messages)
                    full = _full_collections()
                    ours.append(await _runtime(storage, config, args.messages, f"tp{round_}"))
                    ours_full = _full_collections() - full
                    print(
                        f"round {round_ + 1}: bare {bare[-1][0]:.0f} msg/s "
                        f"{bare[-1][1] * 1e6:.0f} µs CPU/msg, "
                        f"runtime {ours[-1][0]:.0f} msg/s {ours[-1][1] * 1e6:.0f} µs CPU/msg "
                        f"(full collections: bare {bare_full}, runtime {ours_full})"
                    )
                b = statistics.median(rate for rate, _ in bare)
                o = statistics.median(rate for rate, _ in ours)
                b_cpu = statistics.median(cpu for _, cpu in bare)
                o_cpu = statistics.median(cpu for _, cpu in ours)
                # Each round's own ratio: its two runs are minutes apart at most,
                # while the machine's speed drifts over the whole bench.
                rates = _spread(
                    [o_rate / b_rate for (b_rate, _), (o_rate, _) in zip(bare, ours, strict=True)]
                )
                cpus = _spread([o_c / b_c for (_, b_c), (_, o_c) in zip(bare, ours, strict=True)])
                print(
                    f"throughput ({args.messages} messages, median of {args.rounds}): "
                    f"bare receive/delete {b:.0f} msg/s, consumer runtime {o:.0f} msg/s, "
                    f"ratio runtime/bare {rates}"
                )
                print(
                    f"CPU per message (this process, moto excluded): "
                    f"bare {b_cpu * 1e6:.0f} µs, runtime {o_cpu * 1e6:.0f} µs, "
                    f"ratio runtime/bare {cpus} (goal <= 1.5)"
                )
                if args.events <= 0:
                    return
                latencies, batches = await _latency(
                    storage,
                    config,
                    sns,
                    report.topic_arns["product-events"],
                    args.events,
                    args.rate,
                )
                print(
                    f"publish->handled latency over {len(latencies)} events at {args.rate:g}/s: "
                    f"p50 {_pct(latencies, 0.5) * 1000:.1f} ms, "
                    f"p99 {_pct(latencies, 0.99) * 1000:.1f} ms, "
                    f"{batches / len(latencies):.2f} receives per event "
                    f"(linger {args.linger:g} s)"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--events", type=int, default=300)  # 0: skip the latency run
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--linger", type=float, default=EventsConfig.consumer_batch_linger)
    parser.add_argument(
        "--unsettled", action="store_true", help="CPython's collector defaults, not heap.settle"
    )
    args = parser.parse_args()
    with tracing(TelemetryConfig(), "bench-events"):  # as every service process runs
        asyncio.run(main(args))
