#!/usr/bin/env python
"""The local broker's own CPU per call: ``up``'s broker against moto as shipped.

``up`` runs moto's server through ``ec_recommend.runtime.moto_main``, which
patches what moto works out again on every request (see its docstring). This
bench starts that child as ``up`` does (``local_aws.spawn_moto``) and a stock
``python -m moto.server`` side by side, and drives both with the same cycle,
shaped like an order's events:

  publish   SNS PublishBatch of 10 order envelopes with the relay's message
            attributes, to a topic with ``--queues`` raw-delivery SQS
            subscriptions filtered on ``type``
  receive   per queue, SQS ReceiveMessage of those 10, with what the
            consumers' worker asks for
  delete    per queue, SQS DeleteMessageBatch of their receipts
  email     SES SendBulkTemplatedEmail to 4 recipients

CPU is the broker child's (``/proc``), so it counts the broker's work and
none of the client's. The brokers take turns, a round each; the figure is
the median of each round's own ratio, with its range (the machine's speed
drifts between rounds, a ratio within one round does not).

Usage: .venv/bin/python scripts/bench/broker.py [--cycles 100] [--rounds 5] [--queues 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import orjson
from aws_call import SENDER, TEMPLATE, email_destinations, publish_entries
from checkout import cpu_seconds
from events import _spread

from ec_recommend.platform.aws import open_aws_client
from ec_recommend.runtime.local_aws import MotoChild, free_port, moto_ready, spawn_moto, stop_moto

CALLS_PER_QUEUE = 2  # a receive and a delete


@dataclass
class Broker:
    name: str
    child: MotoChild
    sns: Any
    sqs: Any
    ses: Any
    topic: str = ""
    queues: tuple[str, ...] = ()


async def spawn_stock_moto() -> MotoChild:
    """moto's own server, as ``python -m moto.server`` runs it, on a free port."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "moto.server",
        "-H",
        "127.0.0.1",
        "-p",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
    )
    return MotoChild(process, f"http://127.0.0.1:{port}")


async def provision(broker: Broker, queues: int) -> None:
    broker.topic = (await broker.sns.create_topic(Name="order-events"))["TopicArn"]
    urls = []
    for i in range(queues):
        url = (await broker.sqs.create_queue(QueueName=f"queue-{i}"))["QueueUrl"]
        arn = (await broker.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))[
            "Attributes"
        ]["QueueArn"]
        await broker.sns.subscribe(
            TopicArn=broker.topic,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={
                "RawMessageDelivery": "true",
                "FilterPolicy": orjson.dumps({"type": ["order.created", "order.paid"]}).decode(),
            },
        )
        urls.append(url)
    broker.queues = tuple(urls)
    await broker.ses.verify_email_identity(EmailAddress=SENDER)
    await broker.ses.create_template(
        Template={"TemplateName": TEMPLATE, "SubjectPart": "{{subject}}", "TextPart": "x"}
    )


async def cycle(broker: Broker, entries: list[dict[str, Any]], destinations: list[Any]) -> None:
    await broker.sns.publish_batch(TopicArn=broker.topic, PublishBatchRequestEntries=entries)
    for url in broker.queues:
        messages = (
            await broker.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                MessageAttributeNames=["All"],
            )
        )["Messages"]
        assert len(messages) == len(entries), f"{broker.name}: {len(messages)} received"
        await broker.sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    await broker.ses.send_bulk_templated_email(
        Source=SENDER, Template=TEMPLATE, DefaultTemplateData="{}", Destinations=destinations
    )


async def cpu_per_call(
    broker: Broker, cycles: int, entries: list[Any], destinations: list[Any]
) -> float:
    """Milliseconds of the broker child's CPU per call, over ``cycles`` cycles."""
    pid = broker.child.process.pid
    before = cpu_seconds(pid)
    for _ in range(cycles):
        await cycle(broker, entries, destinations)
    calls = cycles * (2 + CALLS_PER_QUEUE * len(broker.queues))
    return (cpu_seconds(pid) - before) / calls * 1000


async def main(args: argparse.Namespace) -> None:
    entries, destinations = publish_entries(), email_destinations()
    async with AsyncExitStack() as stack:
        brokers = []
        for name, spawn in (("stock", spawn_stock_moto), ("up's", spawn_moto)):
            child = await spawn()
            stack.push_async_callback(stop_moto, child.process)
            aws = await moto_ready(child)
            clients = [
                await stack.enter_async_context(
                    open_aws_client(service, region=aws.region, endpoint_url=aws.endpoint_url)
                )
                for service in ("sns", "sqs", "ses")
            ]
            broker = Broker(name, child, *clients)
            await provision(broker, args.queues)
            await cycle(broker, entries, destinations)  # warm: backends, connections
            brokers.append(broker)
        figures: dict[str, list[float]] = {"stock": [], "up's": []}
        ratios = []
        for _ in range(args.rounds):
            for broker in brokers:
                figures[broker.name].append(
                    await cpu_per_call(broker, args.cycles, entries, destinations)
                )
            ratios.append(figures["up's"][-1] / figures["stock"][-1])
    calls = 2 + CALLS_PER_QUEUE * args.queues
    print(
        f"Local broker CPU per call ({args.cycles} cycles of {calls} calls a round, "
        f"{args.rounds} rounds, {args.queues} queues)"
    )
    for name, values in figures.items():
        spread = f"rounds {min(values):.2f}–{max(values):.2f}"
        print(f"  {name:6} {statistics.median(values):.2f} ms  ({spread})")
    print(f"  up's/stock: {_spread(ratios)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--queues", type=int, default=4)
    asyncio.run(main(parser.parse_args()))
