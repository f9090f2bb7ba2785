"""The local broker counts the calls it serves: ``GET /_ec/calls`` on a real moto child."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest

from ec_recommend.platform.aws import open_aws_client
from ec_recommend.runtime.broker_calls import CALLS_PATH
from ec_recommend.runtime.local_aws import LocalAws

pytestmark = pytest.mark.asyncio


async def report(aws: LocalAws) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(aws.endpoint_url + CALLS_PATH) as r:
        assert r.status == 200
        return dict(await r.json())


def calls(before: dict[str, Any], after: dict[str, Any]) -> dict[tuple[str, str], int]:
    """Calls made between two reports, per (service, action)."""
    counted: dict[tuple[str, str], int] = {}
    for service, actions in after["calls"].items():
        for action, n in actions.items():
            made = n - before["calls"].get(service, {}).get(action, 0)
            if made:
                counted[(service, action)] = made
    return counted


async def test_sqs_and_sns_calls_are_counted_by_action_and_queues_report_depth(
    local_aws: LocalAws,
) -> None:
    name = f"calls-{uuid.uuid4().hex[:8]}"
    region, endpoint = local_aws.region, local_aws.endpoint_url
    async with (
        open_aws_client("sqs", region=region, endpoint_url=endpoint) as sqs,
        open_aws_client("sns", region=region, endpoint_url=endpoint) as sns,
    ):
        queue_url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
        topic_arn = (await sns.create_topic(Name=name))["TopicArn"]
        before = await report(local_aws)
        await sqs.send_message(QueueUrl=queue_url, MessageBody="one")
        await sqs.send_message(QueueUrl=queue_url, MessageBody="two", DelaySeconds=600)
        middle = await report(local_aws)
        assert middle["queues"][name] == {"visible": 1, "in_flight": 0, "delayed": 1}
        received = await sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=30)
        handle = received["Messages"][0]["ReceiptHandle"]
        assert (await report(local_aws))["queues"][name]["in_flight"] == 1
        await sqs.delete_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": "0", "ReceiptHandle": handle}]
        )
        await sns.publish(TopicArn=topic_arn, Message="hello")
        after = await report(local_aws)
    # the counter is shared with every other test on this moto: count only our calls' kinds
    made = calls(before, after)
    assert made[("sqs", "SendMessage")] >= 2
    assert made[("sqs", "ReceiveMessage")] >= 1
    assert made[("sqs", "DeleteMessageBatch")] >= 1
    assert made[("sns", "Publish")] >= 1
    assert after["queues"][name] == {"visible": 0, "in_flight": 0, "delayed": 1}


async def test_the_broker_answers_its_services_without_browser_headers(local_aws: LocalAws) -> None:
    # its clients are our services: no CORS headers worked out per request
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            local_aws.endpoint_url,
            data={"Action": "ListTopics", "Version": "2010-03-31"},
            headers={"Origin": "http://example.com"},
        ) as response,
    ):
        assert response.status in (200, 403)  # unsigned: moto may refuse it, either way it answers
        assert "Access-Control-Allow-Origin" not in response.headers
