#!/usr/bin/env python
"""Client-side CPU of one aiobotocore call, against moto's server.

Each call is awaited alone, in the shapes ``up`` makes most:
  publish   SNS PublishBatch of 10 order envelopes with the relay's message
            attributes (query protocol: the form-encoded body is most of it)
  email     SES SendBulkTemplatedEmail to 4 recipients (query protocol)
  send      SQS SendMessageBatch of 10 envelopes (JSON protocol)
  receive   SQS ReceiveMessage of up to 10 with no wait, asking for what the
            consumers' worker asks for (JSON protocol)
  receive1  the same, one message a call (its own queue, filled beforehand)
  delete    SQS DeleteMessageBatch of 10 receipts (the same ten each call:
            moto answers an already deleted receipt as deleted)
CPU is this process's (``getrusage``: moto is a child process, not counted),
so it includes aiohttp's send and receive but none of moto's work. Rounds
alternate the shapes; the median round is printed. ``--profile SHAPE`` prints
the heaviest functions of that shape's calls instead (``--sort cumulative``).
``--no-validation`` turns botocore's parameter validation off, to see what it
costs.

Usage: .venv/bin/python scripts/bench/aws_call.py [--calls 300] [--rounds 5]
       [--profile publish|email|send|receive|receive1|delete] [--sort tottime] [--no-validation]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import resource
import statistics
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiobotocore.config import AioConfig

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend._gen.ecommerce.common import Money
from ec_recommend.platform.aws import open_aws_client
from ec_recommend.platform.events.envelope import encode, new_event
from ec_recommend.platform.events.relay import _attributes
from ec_recommend.runtime.local_aws import moto_server

SENDER = "shop@example.com"
TEMPLATE = "bench-message"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def order_envelope(i: int) -> str:
    """An order.created envelope like the order service's, with trace metadata."""
    items = [
        pb_order.OrderItem(
            product_id=str(uuid.uuid4()),
            seller_id=str(uuid.uuid4()),
            name=name,
            quantity=q,
            unit_price=Money(amount=price, currency="JPY"),
            line_total=Money(amount=price * q, currency="JPY"),
        )
        for name, q, price in (("抹茶 Matcha 100g", 2, 1800), ("Tea cup / 湯呑み", 1, 3200))
    ]
    order = pb_order.Order(
        id=str(uuid.uuid4()),
        order_number=f"ORD-{i:08d}",
        user_id=str(uuid.uuid4()),
        items=items,
        total_amount=Money(amount=6800, currency="JPY"),
        status="PENDING",
    )
    trace = uuid.uuid4().hex
    metadata = {
        "traceparent": f"00-{trace}-{trace[:16]}-01",
        "correlation_id": str(uuid.uuid4()),
    }
    return encode(
        new_event("order.created", pb.OrderCreated(order=order), source="order", metadata=metadata)
    )


def publish_entries() -> list[dict[str, Any]]:
    bodies = [order_envelope(i) for i in range(10)]
    return [
        {"Id": str(i), "Message": body, "MessageAttributes": _attributes("order.created", body)}
        for i, body in enumerate(bodies)
    ]


def email_destinations() -> list[dict[str, Any]]:
    return [
        {
            "Destination": {"ToAddresses": [f"customer{i}@example.com"]},
            "ReplacementTemplateData": orjson.dumps(
                {
                    "subject": f"ご注文ありがとうございます ORD-{i:08d}",
                    "body": f"Your order ORD-{i:08d}:\n  抹茶 Matcha 100g x2  ¥3,600\n"
                    "  Tea cup / 湯呑み x1  ¥3,200\nTotal ¥6,800\n",
                }
            ).decode(),
        }
        for i in range(4)
    ]


async def _measure(call: Callable[[], Awaitable[Any]], calls: int) -> float:
    await call()  # warm: connection, caches
    cpu = _cpu()
    for _ in range(calls):
        await call()
    return (_cpu() - cpu) / calls


async def run(args: argparse.Namespace) -> None:
    calls, rounds = args.calls, args.rounds
    config = AioConfig(parameter_validation=not args.no_validation)
    async with moto_server() as aws:
        region, url = aws.region, aws.endpoint_url
        async with (
            open_aws_client("sns", region=region, endpoint_url=url, config=config) as sns,
            open_aws_client("ses", region=region, endpoint_url=url, config=config) as ses,
            open_aws_client("sqs", region=region, endpoint_url=url, config=config) as sqs,
        ):
            topic = (await sns.create_topic(Name="bench-topic"))["TopicArn"]
            queue = (await sqs.create_queue(QueueName="bench-queue"))["QueueUrl"]
            single = (await sqs.create_queue(QueueName="bench-queue-1"))["QueueUrl"]
            await ses.verify_email_identity(EmailAddress=SENDER)
            await ses.create_template(
                Template={"TemplateName": TEMPLATE, "SubjectPart": "{{subject}}", "TextPart": "x"}
            )
            entries = publish_entries()
            destinations = email_destinations()
            envelopes = [entry["Message"] for entry in entries]

            async def publish() -> Any:
                return await sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries)

            async def email() -> Any:
                return await ses.send_bulk_templated_email(
                    Source=SENDER,
                    Template=TEMPLATE,
                    DefaultTemplateData="{}",
                    Destinations=destinations,
                )

            async def send() -> Any:
                return await sqs.send_message_batch(
                    QueueUrl=queue,
                    Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(envelopes)],
                )

            def receiver(url: str, count: int) -> Callable[[], Awaitable[Any]]:
                async def receive() -> Any:
                    return await sqs.receive_message(
                        QueueUrl=url,
                        MaxNumberOfMessages=count,
                        WaitTimeSeconds=0,
                        MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                        MessageAttributeNames=["All"],
                    )

                return receive

            async def send_to(url: str, calls: int) -> None:
                for _ in range(calls):
                    await sqs.send_message_batch(
                        QueueUrl=url,
                        Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(envelopes)],
                    )

            receive, receive1 = receiver(queue, 10), receiver(single, 1)
            # receive1's queue holds a message for each of its calls, warm-ups included.
            await send_to(single, ((rounds if not args.profile else 1) * (calls + 1) + 9) // 10)
            await send_to(queue, 1)
            receipts = [m["ReceiptHandle"] for m in (await receive())["Messages"]]
            assert len(receipts) == 10

            async def delete() -> Any:
                return await sqs.delete_message_batch(
                    QueueUrl=queue,
                    Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts)],
                )

            shapes = {
                "publish": publish,
                "email": email,
                "send": send,
                "receive": receive,
                "receive1": receive1,
                "delete": delete,
            }
            if args.profile:
                call = shapes[args.profile]
                if call is receive:  # ten messages for each receive
                    await send_to(queue, calls + 1)
                await call()
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(calls):
                    await call()
                profiler.disable()
                pstats.Stats(profiler).sort_stats(args.sort).print_stats(40)
                return

            results: dict[str, list[float]] = {name: [] for name in shapes}
            for _ in range(rounds):
                for name, call in shapes.items():
                    results[name].append(await _measure(call, calls))
            for name, values in results.items():
                print(
                    f"{name:8s} {statistics.median(values) * 1e3:6.3f} ms CPU/call "
                    f"(rounds: {', '.join(f'{v * 1e3:.3f}' for v in values)})"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--profile", choices=["publish", "email", "send", "receive", "receive1", "delete"]
    )
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--no-validation", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
