"""aiobotocore clients for SNS and SQS, and resource names with the prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.config import AioConfig

from ec_recommend.config import EventsConfig
from ec_recommend.platform.aws import open_aws_client


@asynccontextmanager
async def aws_client(
    service: str, config: EventsConfig, *, fail_fast: bool = False, pool: int = 10
) -> AsyncIterator[Any]:
    """An SNS/SQS client for ``config``; moto's credentials when an endpoint is set.

    ``fail_fast`` turns off botocore's own retries and shortens the connect
    timeout, for callers (the relay) that retry with their own backoff. At
    most ``pool`` connections, kept alive between calls (the local broker
    keeps them too) for longer than a long poll's wait, so a consumer's next
    poll reuses one instead of opening TCP.
    """
    retries = {"max_attempts": 1 if fail_fast else 4, "mode": "standard"}
    client_config = AioConfig(
        connect_timeout=2 if fail_fast else 10,
        read_timeout=max(30, config.consumer_wait_seconds + 10),
        retries=retries,  # type: ignore[arg-type]
        max_pool_connections=pool,
        connector_args={"keepalive_timeout": float(config.consumer_wait_seconds + 20)},
    )
    async with open_aws_client(
        service, region=config.region, endpoint_url=config.endpoint_url, config=client_config
    ) as client:
        yield client


def prefixed(config: EventsConfig, name: str) -> str:
    return f"{config.name_prefix}{name}"


async def queue_url(sqs: Any, config: EventsConfig, name: str) -> str:
    response = await sqs.get_queue_url(QueueName=prefixed(config, name))
    return str(response["QueueUrl"])


async def topic_arns(sns: Any, config: EventsConfig) -> dict[str, str]:
    """Existing topics by unprefixed name (only those with our prefix)."""
    arns: dict[str, str] = {}
    paginator = sns.get_paginator("list_topics")
    async for page in paginator.paginate():
        for topic in page.get("Topics", []):
            arn = str(topic["TopicArn"])
            name = arn.rsplit(":", 1)[-1]
            if name.startswith(config.name_prefix):
                arns[name[len(config.name_prefix) :]] = arn
    return arns
