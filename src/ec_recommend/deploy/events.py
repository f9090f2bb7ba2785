"""SNS topics, SQS queues with their DLQs, queue policies and subscriptions.

The same shapes ``platform.events.provision`` creates by API calls: 14 days
of retention in a DLQ, the redrive policy, a queue policy that lets exactly
the topics routed to the queue send, raw delivery and a filter policy on
the ``type`` message attribute.
"""

from __future__ import annotations

from typing import Any

from ec_recommend.deploy.names import logical_id, prefixed
from ec_recommend.platform.events.provision import DLQ_RETENTION_SECONDS, queue_policy
from ec_recommend.platform.events.topology import Topology


def topic_id(name: str) -> str:
    return logical_id("Topic", name)


def queue_id(name: str) -> str:
    return logical_id("Queue", name)


def dlq_id(name: str) -> str:
    return logical_id("Dlq", name)


def event_resources(topology: Topology) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for topic in topology.topics:
        resources[topic_id(topic.name)] = {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": prefixed(topic.name)},
        }
    routes = topology.routes()
    for queue in topology.queues:
        resources[dlq_id(queue.dlq)] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": prefixed(queue.dlq),
                "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
            },
        }
        resources[queue_id(queue.name)] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": prefixed(queue.name),
                "VisibilityTimeout": queue.visibility_timeout,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id(queue.dlq), "Arn"]},
                    "maxReceiveCount": queue.max_receive_count,
                },
            },
        }
        # sorted as provision sorts the topics' ARNs (same prefix: by name)
        topics = sorted({r.topic for r in routes if r.queue == queue.name})
        senders = [{"Ref": topic_id(topic)} for topic in topics]
        if senders:
            resources[logical_id("QueuePolicy", queue.name)] = {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [{"Ref": queue_id(queue.name)}],
                    "PolicyDocument": queue_policy(
                        {"Fn::GetAtt": [queue_id(queue.name), "Arn"]}, senders
                    ),
                },
            }
    for route in routes:
        resources[logical_id("Subscription", f"{route.topic}-to-{route.queue}")] = {
            "Type": "AWS::SNS::Subscription",
            "Properties": {
                "TopicArn": {"Ref": topic_id(route.topic)},
                "Protocol": "sqs",
                "Endpoint": {"Fn::GetAtt": [queue_id(route.queue), "Arn"]},
                "RawMessageDelivery": True,
                "FilterPolicyScope": "MessageAttributes",
                "FilterPolicy": route.filter_policy,
            },
        }
    return resources


def event_outputs(topology: Topology) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    for topic in topology.topics:
        outputs[topic_id(topic.name)] = {
            "Description": f"ARN of topic {topic.name}",
            "Value": {"Ref": topic_id(topic.name)},
        }
    for queue in topology.queues:
        outputs[queue_id(queue.name)] = {
            "Description": f"URL of queue {queue.name}",
            "Value": {"Ref": queue_id(queue.name)},
        }
        outputs[dlq_id(queue.dlq)] = {
            "Description": f"URL of the DLQ of {queue.name}",
            "Value": {"Ref": dlq_id(queue.dlq)},
        }
    return outputs
