"""Fixtures for the event platform: an EventsConfig on moto with a unique prefix."""

from __future__ import annotations

import uuid

import pytest

from ec_recommend.config import EventsConfig
from ec_recommend.runtime.local_aws import LocalAws


@pytest.fixture
def events_config(local_aws: LocalAws) -> EventsConfig:
    return EventsConfig(
        enabled=True,
        endpoint_url=local_aws.endpoint_url,
        region=local_aws.region,
        name_prefix=f"t{uuid.uuid4().hex[:8]}-",
        relay_interval=0.05,
        relay_max_backoff=0.5,
        consumer_wait_seconds=1,
        shutdown_grace=5.0,
    )
