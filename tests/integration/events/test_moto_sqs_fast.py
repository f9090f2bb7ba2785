"""The local broker's fast ReceiveMessage and DeleteMessageBatch answer as moto does.

The same calls go to moto as shipped (``python -m moto.server``) and to the
broker ``up`` runs (``moto_main``, with ``moto_sqs_fast`` in front); what the
AWS client parses from each must match, errors included, apart from what is
random per message (ids, receipt handles, timestamps).
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
RANDOM_PER_MESSAGE = {"MessageId", "ReceiptHandle"}
TIMESTAMPS = {"SentTimestamp", "ApproximateFirstReceiveTimestamp"}


@pytest.fixture(scope="module")
def stock_moto() -> Iterator[LocalAws]:
    with moto_child(STOCK_MOTO) as aws:
        yield aws


def _comparable(response: dict[str, Any]) -> dict[str, Any]:
    """A parsed answer without what differs by chance between two servers."""
    messages = []
    for message in response.get("Messages", []):
        kept = {k: v for k, v in message.items() if k not in RANDOM_PER_MESSAGE}
        if "Attributes" in kept:
            kept["Attributes"] = {
                k: ("<time>" if k in TIMESTAMPS else v) for k, v in kept["Attributes"].items()
            }
        messages.append(kept)
    rest = {k: v for k, v in response.items() if k not in {"Messages", "ResponseMetadata"}}
    return {**rest, "Messages": messages} if messages else rest


def _error(exc: ClientError) -> dict[str, Any]:
    return {"code": exc.response["Error"]["Code"], "message": exc.response["Error"]["Message"]}


async def _scenario(endpoint_url: str) -> list[Any]:
    """A consumer's calls and a few a consumer should never make, as parsed."""
    seen: list[Any] = []
    name = f"fast-{uuid.uuid4().hex[:8]}"
    async with (
        open_aws_client("sqs", region=REGION, endpoint_url=endpoint_url) as sqs,
        open_aws_client("sns", region=REGION, endpoint_url=endpoint_url) as sns,
    ):
        url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
        arn = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))[
            "Attributes"
        ]["QueueArn"]
        await sqs.send_message(
            QueueUrl=url,
            MessageBody='{"order": "抹茶", "n": 1}',
            MessageAttributes={
                "event_type": {"DataType": "String", "StringValue": "order.paid"},
                "count": {"DataType": "Number", "StringValue": "3"},
                "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xffraw"},
            },
        )
        await sqs.send_message(QueueUrl=url, MessageBody="plain")
        # As the relays deliver: SNS to a raw subscription, attributes carried over.
        topic = (await sns.create_topic(Name=name))["TopicArn"]
        await sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
        )
        await sns.publish(
            TopicArn=topic,
            Message=json.dumps({"event_type": "order.created"}),
            MessageAttributes={
                "event_type": {"DataType": "String", "StringValue": "order.created"}
            },
        )

        async def receive(**params: Any) -> dict[str, Any]:
            response = await sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0, **params)
            seen.append(_comparable(response))
            return response

        # Every message, seen and put back at once, then again with fewer fields.
        await receive(
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            MessageAttributeNames=["All"],
        )
        await receive(MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"])
        await receive(
            MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["event_type"]
        )
        held = await receive(MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        await receive(MaxNumberOfMessages=10)  # all in flight: an empty answer
        receipts = [m["ReceiptHandle"] for m in held.get("Messages", [])]
        entries = [{"Id": f"m{i}", "ReceiptHandle": r} for i, r in enumerate(receipts)]
        deleted = await sqs.delete_message_batch(
            QueueUrl=url, Entries=[*entries, {"Id": "bogus", "ReceiptHandle": "not-a-receipt"}]
        )
        seen.append(_comparable(deleted))

        refused: list[dict[str, Any]] = [
            {"QueueUrl": url, "MaxNumberOfMessages": 11},
            {"QueueUrl": url, "MaxNumberOfMessages": 1, "WaitTimeSeconds": 21},
            {"QueueUrl": url + "-gone", "MaxNumberOfMessages": 1},
        ]
        for params in refused:
            with pytest.raises(ClientError) as receive_error:
                await sqs.receive_message(**params)
            seen.append(_error(receive_error.value))
        twice = [{"Id": "a", "ReceiptHandle": "same"}, {"Id": "b", "ReceiptHandle": "same"}]
        for queue, batch in ((url, twice), (url + "-gone", entries[:1])):
            with pytest.raises(ClientError) as delete_error:
                await sqs.delete_message_batch(QueueUrl=queue, Entries=batch)
            seen.append(_error(delete_error.value))
    return seen


async def test_fast_answers_read_as_moto_s(local_aws: LocalAws, stock_moto: LocalAws) -> None:
    ours = await _scenario(local_aws.endpoint_url)
    stock = await _scenario(stock_moto.endpoint_url)

    assert ours == stock
    first = ours[0]["Messages"]
    assert len(first) == 3  # the scenario reads what it means to read
    assert {m["Body"] for m in first} == {
        '{"order": "抹茶", "n": 1}',
        "plain",
        '{"event_type": "order.created"}',
    }
    assert ours[3]["Messages"] and "Messages" not in ours[4]
    assert [f["Id"] for f in ours[5]["Failed"]] == ["bogus"]
    assert len(ours[5]["Successful"]) == 3
