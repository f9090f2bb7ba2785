"""aiobotocore clients: moto's server locally, AWS in production."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session

LOCAL_REGION = "ap-northeast-1"
# moto accepts any credentials; these keep botocore from looking elsewhere.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass(frozen=True)
class LocalAws:
    """Where the local stand-in for AWS (moto's server, run by ``runtime.local_aws``) listens."""

    endpoint_url: str
    region: str = LOCAL_REGION


# One session per event loop: a session's loader caches the service models
# (botocore's JSON API descriptions), so clients of one session share them.
# A session per client loaded them again each time: ~4 MB per client, about
# a third of ``up``'s memory. Per loop, because a session's credential
# refresh holds asyncio primitives bound to the loop that first used them.
_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AioSession] = (
    weakref.WeakKeyDictionary()
)


def _session() -> AioSession:
    loop = asyncio.get_running_loop()
    session = _SESSIONS.get(loop)
    if session is None:
        session = _SESSIONS[loop] = get_session()
    return session


@asynccontextmanager
async def open_aws_client(
    service: str, *, region: str, endpoint_url: str | None, config: AioConfig | None = None
) -> AsyncIterator[Any]:
    """A client for ``service`` at ``endpoint_url`` (moto), or AWS when it is ``None``.

    moto accepts any credentials, so the local ones keep botocore from looking
    elsewhere; in production the default credential chain applies.
    """
    credentials = LOCAL_CREDENTIALS if endpoint_url else {}
    async with _session().create_client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=endpoint_url,
        config=config,
        **credentials,
    ) as client:
        yield client
