"""The local broker's fast PublishBatch answers, and delivers, as moto does.

The same batches go to moto as shipped (``python -m moto.server``) and to the
broker ``up`` runs (``moto_main``, with ``moto_sns_fast`` in front): what the
AWS client parses from each answer must match, errors included, and so must
what reaches the subscribed queues, apart from what is random per message
(ids, receipt handles, timestamps, signatures).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ec_recommend.platform.aws import open_aws_client
from ec_recommend.runtime.local_aws import LocalAws
from tests.moto_child import STOCK_MOTO, moto_child

pytestmark = pytest.mark.asyncio

REGION = "us-east-1"
# Per message or per subscription, by chance: left out of the comparison.
RANDOM = {
    "MessageId",
    "ReceiptHandle",
    "Timestamp",
    "Signature",
    "UnsubscribeURL",
    "SigningCertURL",
    "ResponseMetadata",
}
TOO_LONG = "x" * (256 * 1024 + 1)


@pytest.fixture(scope="module")
def stock_moto() -> Iterator[LocalAws]:
    with moto_child(STOCK_MOTO) as aws:
        yield aws


def _attributes(event_type: str, **numbers: int) -> dict[str, Any]:
    attributes = {"event_type": {"DataType": "String", "StringValue": event_type}}
    for name, value in numbers.items():
        attributes[name] = {"DataType": "Number", "StringValue": str(value)}
    return attributes


def _without_chance(value: Any) -> Any:
    """``value`` with what differs by chance between two servers left out."""
    if isinstance(value, dict):
        return {k: _without_chance(v) for k, v in value.items() if k not in RANDOM}
    if isinstance(value, list):
        return [_without_chance(v) for v in value]
    return value


def _delivered(message: dict[str, Any]) -> dict[str, Any]:
    kept = _without_chance(message)
    if kept["Body"].startswith("{") and '"Type": "Notification"' in kept["Body"]:
        # An SNS envelope: its digest covers its random fields too.
        kept["Body"] = _without_chance(json.loads(kept["Body"]))
        del kept["MD5OfBody"]
    return kept


def _error(exc: ClientError) -> dict[str, Any]:
    return {"code": exc.response["Error"]["Code"], "message": exc.response["Error"]["Message"]}


async def _scenario(endpoint_url: str, name: str) -> list[Any]:
    """The relays' batches and a few they never send, then what each queue got."""
    seen: list[Any] = []
    async with (
        open_aws_client("sqs", region=REGION, endpoint_url=endpoint_url) as sqs,
        open_aws_client("sns", region=REGION, endpoint_url=endpoint_url) as sns,
    ):
        topic = (await sns.create_topic(Name=name))["TopicArn"]
        queues = {}
        subscriptions: dict[str, dict[str, str]] = {
            "paid": {
                "RawMessageDelivery": "true",
                "FilterPolicy": json.dumps({"event_type": ["order.paid"]}),
            },
            "large": {
                "RawMessageDelivery": "true",
                "FilterPolicy": json.dumps({"lines": [{"numeric": [">", 2]}]}),
            },
            "wrapped": {},  # SNS's JSON envelope around each message
        }
        for queue, attributes in subscriptions.items():
            url = (await sqs.create_queue(QueueName=f"{name}-{queue}"))["QueueUrl"]
            arn = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))[
                "Attributes"
            ]["QueueArn"]
            await sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes)
            queues[queue] = url

        async def publish(entries: list[dict[str, Any]], topic_arn: str = topic) -> None:
            try:
                seen.append(
                    _without_chance(
                        await sns.publish_batch(
                            TopicArn=topic_arn, PublishBatchRequestEntries=entries
                        )
                    )
                )
            except ClientError as exc:
                seen.append(_error(exc))

        await publish(
            [
                {
                    "Id": "a & <b>",
                    "Message": '{"order": "抹茶 & <b>", "n": 1}',
                    "MessageAttributes": _attributes("order.paid", lines=3),
                },
                {"Id": "2", "Message": "plain", "MessageAttributes": _attributes("order.created")},
                {"Id": "3", "Message": "no attributes"},
                {"Id": "4", "Message": TOO_LONG, "MessageAttributes": _attributes("order.paid")},
            ]
        )
        await publish(
            [
                {"Id": str(i), "Message": f"m{i}", "MessageAttributes": _attributes("order.paid")}
                for i in range(10)
            ]
        )
        to_moto: list[tuple[list[dict[str, Any]], str]] = [
            ([{"Id": str(i), "Message": "m"} for i in range(11)], topic),
            ([{"Id": "same", "Message": "m"}, {"Id": "same", "Message": "n"}], topic),
            ([{"Id": "1", "Message": "m"}], topic + "-gone"),
            ([{"Id": "1", "Message": "m", "Subject": "hello"}], topic),
            (
                [
                    {
                        "Id": "1",
                        "Message": "m",
                        "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "x"}},
                    }
                ],
                topic,
            ),
            (
                [
                    {
                        "Id": "1",
                        "Message": "binary",
                        "MessageAttributes": {
                            "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}
                        },
                    }
                ],
                topic,
            ),
        ]
        for entries, topic_arn in to_moto:
            await publish(entries, topic_arn)

        for url in queues.values():
            messages: list[dict[str, Any]] = []
            while True:
                got = await sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=0,
                    MessageAttributeNames=["All"],
                )
                if not got.get("Messages"):
                    break
                messages += got["Messages"]
            seen.append(sorted((_delivered(m) for m in messages), key=json.dumps))
    return seen


async def test_fast_publish_batches_read_as_moto_s(
    local_aws: LocalAws, stock_moto: LocalAws
) -> None:
    name = f"fast-{uuid.uuid4().hex[:8]}"  # the same on both: topic ARNs are delivered
    ours = await _scenario(local_aws.endpoint_url, name)
    stock = await _scenario(stock_moto.endpoint_url, name)

    assert ours == stock
    # The scenario reads what it means to read.
    first, full = ours[0], ours[1]
    assert [s["Id"] for s in first["Successful"]] == ["a & <b>", "2", "3"]
    assert [f["Id"] for f in first["Failed"]] == ["4"]
    assert len(full["Successful"]) == 10 and full["Failed"] == []
    # Moto refuses too many entries, repeated ids, a missing topic and a number
    # that is not one; it takes a subject and a binary attribute.
    assert [("code" in answer) for answer in ours[2:8]] == [True, True, True, False, True, False]
    paid, large, wrapped = ours[8:]
    assert len(paid) == 11
    assert [m["Body"] for m in large] == ['{"order": "抹茶 & <b>", "n": 1}']
    assert len(wrapped) == 15
