"""aiobotocore clients: moto's server locally, AWS in production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from ec_recommend.runtime.local_aws import LOCAL_CREDENTIALS


@asynccontextmanager
async def open_aws_client(
    service: str, *, region: str, endpoint_url: str | None, config: AioConfig | None = None
) -> AsyncIterator[Any]:
    """A client for ``service`` at ``endpoint_url`` (moto), or AWS when it is ``None``.

    moto accepts any credentials, so the local ones keep botocore from looking
    elsewhere; in production the default credential chain applies.
    """
    credentials = LOCAL_CREDENTIALS if endpoint_url else {}
    async with get_session().create_client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=endpoint_url,
        config=config,
        **credentials,
    ) as client:
        yield client
