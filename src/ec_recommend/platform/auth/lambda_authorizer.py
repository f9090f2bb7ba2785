"""API Gateway Lambda authorizer: the same verification for the AWS deployment.

``handler(event, context)`` accepts TOKEN and REQUEST authorizer events and
returns an IAM policy allowing or denying ``execute-api:Invoke`` on the
``methodArn``, with the flattened AuthContext as ``context``.
"""

from __future__ import annotations

from typing import Any

# Filled in below; the module exists now so the gateway side can import it.


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise NotImplementedError
