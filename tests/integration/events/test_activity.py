"""User activity goes straight to the analytics queue, off the request path."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ec_recommend.config import EventsConfig
from ec_recommend.platform.events.activity import ActivitySender
from ec_recommend.platform.events.aws import queue_url
from ec_recommend.platform.events.envelope import decode
from ec_recommend.platform.events.provision import ProvisionReport
from ec_recommend.runtime.local_aws import free_port
from tests.conftest import wait_for

pytestmark = pytest.mark.asyncio


async def test_activities_arrive_in_the_analytics_queue(
    provisioned: ProvisionReport, events_config: EventsConfig, sqs: Any
) -> None:
    async with ActivitySender(events_config) as sender:
        for i in range(23):
            sender.product_view(product_id=f"p-{i}", user_id="u-1", session_id="s-1")
        sender.search(query="green tea")
        await wait_for(lambda: sender.sent == 24, timeout=20)
    url = await queue_url(sqs, events_config, "analytics-event-queue")
    received: list[Any] = []
    while len(received) < 24:
        response = await sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        received.extend(decode(m["Body"]) for m in response.get("Messages", []))
    assert {e.type for e in received} == {"analytics.user_activity"}
    assert sorted(e.data.activity for e in received).count("search") == 1  # type: ignore[attr-defined]


async def test_recording_never_blocks_when_sqs_is_down(events_config: EventsConfig) -> None:
    down = replace(events_config, endpoint_url=f"http://127.0.0.1:{free_port()}")
    async with ActivitySender(down, capacity=100) as sender:
        for i in range(1000):
            sender.product_view(product_id=f"p-{i}")  # synchronous: returns at once
        assert sender.dropped >= 900
        assert sender.sent == 0
    with pytest.raises(ValueError):
        sender.record("purchase")
