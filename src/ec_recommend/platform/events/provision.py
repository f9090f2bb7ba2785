"""Create or update the topology on SNS/SQS, idempotently.

Every step reads the current state first and changes only what differs, so a
second run reports no changes. Queues get their DLQ's redrive policy and a
policy that lets exactly the topics routed to them send; subscriptions use raw
delivery (the SQS body is our envelope, not an SNS wrapper) and a filter
policy on the ``type`` message attribute.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ec_recommend.config import EventsConfig
from ec_recommend.platform.events.aws import aws_client, prefixed, topic_arns
from ec_recommend.platform.events.topology import QueueSpec, Topology

# 14 days, the maximum, so dead letters stay until someone looks at them.
DLQ_RETENTION_SECONDS = 1209600


@dataclass
class ProvisionReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    topic_arns: dict[str, str] = field(default_factory=dict)
    queue_urls: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def lines(self) -> list[str]:
        return [f"created {item}" for item in self.created] + [
            f"updated {item}" for item in self.updated
        ]


async def provision(config: EventsConfig, topology: Topology) -> ProvisionReport:
    """Topics, then every queue with its DLQ and subscriptions. Topics and queues
    do not depend on one another, so each is provisioned concurrently (a start
    of ``up`` waited ~1 s for ~75 calls in a row); the report lists them in the
    topology's order all the same."""
    report = ProvisionReport()
    async with aws_client("sns", config) as sns, aws_client("sqs", config) as sqs:
        existing = await topic_arns(sns, config)
        created = await asyncio.gather(
            *(sns.create_topic(Name=prefixed(config, topic.name)) for topic in topology.topics)
        )
        for topic, response in zip(topology.topics, created, strict=True):
            report.topic_arns[topic.name] = str(response["TopicArn"])
            _note(report, f"topic {prefixed(config, topic.name)}", topic.name not in existing)
        routes = topology.routes()

        async def queue_with_subscriptions(queue: QueueSpec) -> ProvisionReport:
            own = ProvisionReport(topic_arns=report.topic_arns)
            senders = sorted(report.topic_arns[r.topic] for r in routes if r.queue == queue.name)
            url, arn = await _ensure_queue(sqs, config, queue, senders, own)
            own.queue_urls[queue.name] = url
            for route in (r for r in routes if r.queue == queue.name):
                await _ensure_subscription(
                    sns, report.topic_arns[route.topic], arn, route.filter_policy, own
                )
            return own

        for own in await asyncio.gather(*map(queue_with_subscriptions, topology.queues)):
            report.created += own.created
            report.updated += own.updated
            report.unchanged += own.unchanged
            report.queue_urls.update(own.queue_urls)
    return report


def _note(report: ProvisionReport, item: str, created: bool, updated: bool = False) -> None:
    if created:
        report.created.append(item)
    elif updated:
        report.updated.append(item)
    else:
        report.unchanged.append(item)


async def _find_queue(sqs: Any, name: str) -> str | None:
    try:
        response = await sqs.get_queue_url(QueueName=name)
    except ClientError as exc:
        if "NonExistentQueue" in str(exc.response.get("Error", {}).get("Code", "")):
            return None
        raise
    return str(response["QueueUrl"])


async def _apply_queue(
    sqs: Any, name: str, attributes: Callable[[str], dict[str, str]], report: ProvisionReport
) -> tuple[str, str]:
    """Create queue ``name`` if missing and set the attributes that differ."""
    url = await _find_queue(sqs, name)
    created = url is None
    if url is None:
        url = str((await sqs.create_queue(QueueName=name))["QueueUrl"])
    current = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))["Attributes"]
    arn = str(current["QueueArn"])
    wanted = attributes(arn)
    differing = {k: v for k, v in wanted.items() if not _same(current.get(k), v)}
    if differing:
        await sqs.set_queue_attributes(QueueUrl=url, Attributes=differing)
    label = f"queue {name}"
    if differing and not created:
        label += f" ({', '.join(sorted(differing))})"
    _note(report, label, created, bool(differing))
    return url, arn


def _same(current: str | None, wanted: str) -> bool:
    if current is None:
        return False
    if wanted.startswith("{"):
        try:
            return bool(json.loads(current) == json.loads(wanted))
        except ValueError:
            return False
    return current == wanted


async def _ensure_queue(
    sqs: Any, config: EventsConfig, queue: QueueSpec, senders: list[str], report: ProvisionReport
) -> tuple[str, str]:
    _, dlq_arn = await _apply_queue(
        sqs,
        prefixed(config, queue.dlq),
        lambda _arn: {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)},
        report,
    )

    def attributes(arn: str) -> dict[str, str]:
        wanted = {
            "VisibilityTimeout": str(queue.visibility_timeout),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}
            ),
        }
        if senders:
            wanted["Policy"] = json.dumps(queue_policy(arn, senders))
        return wanted

    return await _apply_queue(sqs, prefixed(config, queue.name), attributes, report)


def queue_policy(queue_arn: Any, topic_arns: Any) -> dict[str, Any]:
    """What lets the topics send to the queue (ARNs, or CloudFormation
    expressions of them in the template)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "topics-send",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arns}},
            }
        ],
    }


async def _ensure_subscription(
    sns: Any, topic_arn: str, queue_arn: str, policy: dict[str, list[str]], report: ProvisionReport
) -> None:
    label = f"subscription {topic_arn.rsplit(':', 1)[-1]} -> {queue_arn.rsplit(':', 1)[-1]}"
    wanted = {"RawMessageDelivery": "true", "FilterPolicy": json.dumps(policy)}
    paginator = sns.get_paginator("list_subscriptions_by_topic")
    async for page in paginator.paginate(TopicArn=topic_arn):
        for sub in page.get("Subscriptions", []):
            if sub.get("Endpoint") != queue_arn or sub.get("Protocol") != "sqs":
                continue
            arn = sub["SubscriptionArn"]
            current = (await sns.get_subscription_attributes(SubscriptionArn=arn))["Attributes"]
            differing = {k: v for k, v in wanted.items() if not _same(current.get(k), v)}
            for key, value in differing.items():
                await sns.set_subscription_attributes(
                    SubscriptionArn=arn, AttributeName=key, AttributeValue=value
                )
            _note(report, label, False, bool(differing))
            return
    await sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes=wanted,
        ReturnSubscriptionArn=True,
    )
    _note(report, label, True)
