"""Where the local stand-in for AWS listens: a value, free of any AWS library.

Kept apart from ``platform.aws`` (aiobotocore) so that ``up`` can name its
broker before it has imported the clients that will call it.
"""

from __future__ import annotations

from dataclasses import dataclass

LOCAL_REGION = "ap-northeast-1"


@dataclass(frozen=True)
class LocalAws:
    """Where the local stand-in for AWS (moto's server, run by ``runtime.local_aws``) listens."""

    endpoint_url: str
    region: str = LOCAL_REGION
