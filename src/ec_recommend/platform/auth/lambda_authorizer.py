"""API Gateway Lambda authorizer: the gateway's token check for the AWS deployment.

``handler(event, context)`` takes TOKEN and REQUEST authorizer events and
returns an IAM policy for ``execute-api:Invoke`` on the event's ``methodArn``
(``routeArn`` for HTTP APIs): Allow with the flattened AuthContext as
``context`` for a valid token, Deny for any other. When the JWKS cannot be
fetched it raises, so API Gateway answers 500 instead of caching a Deny.

Configuration (``EC_COGNITO_*``) is read once, at cold start, through
``config.auth_config_from_env`` (only the auth settings); the verifier and
its key cache live as long as the container.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from ec_recommend.config import AuthConfig, auth_config_from_env
from ec_recommend.platform.auth.context import AuthContext
from ec_recommend.platform.auth.verifier import TokenVerifier
from ec_recommend.platform.errors import Unauthenticated

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"


class Authorizer:
    """A ``TokenVerifier`` on a private event loop, callable synchronously."""

    def __init__(self, auth: AuthConfig) -> None:
        self._loop = asyncio.new_event_loop()
        self._verifier = TokenVerifier.from_config(auth)
        self._loop.run_until_complete(self._verifier.__aenter__())

    def __call__(self, event: Mapping[str, Any]) -> dict[str, Any]:
        resource = event.get("methodArn") or event.get("routeArn")
        if not isinstance(resource, str) or not resource:
            raise ValueError("authorizer event has no methodArn")
        token = bearer_token(event)
        try:
            if token is None:
                raise Unauthenticated("missing token")
            context = self._loop.run_until_complete(self._verifier.verify(token))
        except Unauthenticated:
            return policy(ANONYMOUS, "Deny", resource)
        return policy(context.user_id, "Allow", resource, flatten(context))

    def close(self) -> None:
        self._loop.run_until_complete(self._verifier.close())
        self._loop.close()


def bearer_token(event: Mapping[str, Any]) -> str | None:
    """The token of ``Authorization: Bearer <token>`` in a TOKEN or REQUEST event."""
    value: object = event.get("authorizationToken")
    if value is None:
        headers = event.get("headers") or {}
        if isinstance(headers, Mapping):
            value = next((v for k, v in headers.items() if str(k).lower() == "authorization"), None)
    if not isinstance(value, str):
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def flatten(context: AuthContext) -> dict[str, str]:
    """API Gateway context values must be scalars: lists become comma-joined strings."""
    return {
        "userId": context.user_id,
        "email": context.email,
        "roles": ",".join(context.roles),
        "sellerId": context.seller_id or "",
    }


def policy(
    principal: str, effect: str, resource: str, context: Mapping[str, str] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }
    if context:
        response["context"] = dict(context)
    return response


_authorizer: Authorizer | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point."""
    global _authorizer
    if _authorizer is None:
        _authorizer = Authorizer(auth_config_from_env())
    return _authorizer(event)
