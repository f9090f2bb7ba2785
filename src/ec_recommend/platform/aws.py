"""aiobotocore clients: moto's server locally, AWS in production."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session

from ec_recommend.platform.aws_tuning import tune_client
from ec_recommend.platform.local_endpoint import LOCAL_REGION as LOCAL_REGION
from ec_recommend.platform.local_endpoint import LocalAws as LocalAws

# moto accepts any credentials; these keep botocore from looking elsewhere.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


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
    elsewhere; in production the default credential chain applies. Its calls
    cost less CPU, with the same requests (``aws_tuning``).
    """
    credentials = LOCAL_CREDENTIALS if endpoint_url else {}
    # A plain-HTTP endpoint (moto) has no certificate to verify: without this,
    # each client loads the CA bundle all the same (~0.1 s of CPU on a slow
    # machine, and ``up`` opens a dozen clients on its way to ready).
    verify = False if endpoint_url and endpoint_url.startswith("http://") else None
    async with _session().create_client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=endpoint_url,
        config=config,
        verify=verify,
        **credentials,
    ) as client:
        tune_client(client)
        yield client
