"""Provisioning the topology on moto: complete, and idempotent."""

from __future__ import annotations

import json

import pytest

from ec_recommend.config import EventsConfig
from ec_recommend.platform.events.aws import aws_client
from ec_recommend.platform.events.provision import provision
from ec_recommend.platform.events.topology import load_topology

pytestmark = pytest.mark.asyncio


async def test_second_run_changes_nothing(events_config: EventsConfig) -> None:
    topology = load_topology()
    first = await provision(events_config, topology)
    assert len(first.created) == 3 + 2 * len(topology.queues) + len(topology.routes())
    second = await provision(events_config, topology)
    assert second.created == [] and second.updated == []
    assert second.queue_urls == first.queue_urls


async def test_queues_have_redrive_policy_and_topic_policy(events_config: EventsConfig) -> None:
    topology = load_topology()
    report = await provision(events_config, topology)
    async with aws_client("sqs", events_config) as sqs:
        for queue in topology.queues:
            attrs = (
                await sqs.get_queue_attributes(
                    QueueUrl=report.queue_urls[queue.name], AttributeNames=["All"]
                )
            )["Attributes"]
            redrive = json.loads(attrs["RedrivePolicy"])
            assert redrive["deadLetterTargetArn"].endswith(events_config.name_prefix + queue.dlq)
            assert int(redrive["maxReceiveCount"]) == queue.max_receive_count
            assert attrs["VisibilityTimeout"] == str(queue.visibility_timeout)
            statement = json.loads(attrs["Policy"])["Statement"][0]
            senders = set(statement["Condition"]["ArnEquals"]["aws:SourceArn"])
            routed = {
                report.topic_arns[r.topic] for r in topology.routes() if r.queue == queue.name
            }
            assert senders == routed


async def test_subscriptions_use_raw_delivery_and_filter_on_type(
    events_config: EventsConfig,
) -> None:
    topology = load_topology()
    report = await provision(events_config, topology)
    async with aws_client("sns", events_config) as sns:
        arn = report.topic_arns["product-events"]
        subs = (await sns.list_subscriptions_by_topic(TopicArn=arn))["Subscriptions"]
        assert len(subs) == 3
        for sub in subs:
            attrs = (await sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"]))[
                "Attributes"
            ]
            assert attrs["RawMessageDelivery"] == "true"
            assert "product.updated" in json.loads(attrs["FilterPolicy"])["type"]


async def test_changed_timeout_is_updated_in_place(events_config: EventsConfig) -> None:
    topology = load_topology()
    await provision(events_config, topology)
    report = await provision(events_config, topology.with_queue_settings(visibility_timeout=7))
    assert report.created == []
    assert len(report.updated) == len(topology.queues)
    assert all("VisibilityTimeout" in line for line in report.updated)


async def test_report_lists_queues_in_the_topologys_order(events_config: EventsConfig) -> None:
    # queues are provisioned concurrently; the report reads the same every run
    topology = load_topology()
    report = await provision(events_config, topology)
    queues = [item.removeprefix("queue ") for item in report.created if item.startswith("queue ")]
    prefix = events_config.name_prefix
    assert queues == [
        prefix + name for queue in topology.queues for name in (queue.dlq, queue.name)
    ]
    assert list(report.queue_urls) == [queue.name for queue in topology.queues]
