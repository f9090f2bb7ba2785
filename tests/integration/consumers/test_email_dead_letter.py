"""A notification that SES keeps refusing is retried, then dead-lettered
(moto's SES and SQS, the real consumer runtime)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from ec_recommend._gen.ecommerce import events as pb_events
from ec_recommend.config import Config, NotificationConfig
from ec_recommend.consumers import notification
from ec_recommend.platform.events.aws import aws_client, queue_url
from ec_recommend.platform.events.envelope import encode
from ec_recommend.platform.events.provision import provision
from ec_recommend.platform.events.runner import running_consumers
from ec_recommend.platform.events.topology import load_topology
from ec_recommend.runtime.local_aws import LocalAws
from ec_recommend.runtime.registry import ServiceEnv
from tests.conftest import ServicesFactory, events_on, wait_for
from tests.integration.consumers.conftest import event, sent_emails

pytestmark = pytest.mark.asyncio


async def test_refused_email_goes_to_the_dead_letter_queue(
    config: Config, services: ServicesFactory, local_aws: LocalAws
) -> None:
    events = events_on(
        local_aws,
        consumer_wait_seconds=1,
        consumer_concurrency=2,
        shutdown_grace=2.0,
    )
    await provision(
        events, load_topology().with_queue_settings(visibility_timeout=1, max_receive_count=2)
    )
    # Never verified, so SES refuses every message from it.
    unverified = NotificationConfig(sender=f"nobody-{uuid.uuid4().hex[:8]}@example.com")
    config = replace(config, events=events, notification=unverified)
    refused_to = f"a-{uuid.uuid4().hex[:8]}@example.com"
    async with services("user", config_override=config) as hosted:
        env = ServiceEnv(config=config, clients=hosted.clients)
        async with (
            notification.subscription(env) as subscription,
            running_consumers(config.storage, events, [subscription]) as [worker],
            aws_client("sqs", events) as sqs,
        ):
            queue = await queue_url(sqs, events, notification.QUEUE)
            dlq = await queue_url(sqs, events, "email-notification-dlq")
            refused = event("user.created", pb_events.UserCreated(user_id="u1", email=refused_to))
            await sqs.send_message(QueueUrl=queue, MessageBody=encode(refused))

            async def dead_lettered() -> bool:
                response = await sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0)
                return any(refused.id in m["Body"] for m in response.get("Messages", []))

            await wait_for(dead_lettered, timeout=30, interval=0.5)
            assert worker.stats.failed >= 2
            assert await sent_emails(local_aws.endpoint_url, refused_to) == []
