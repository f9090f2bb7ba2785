"""The Lambda authorizer with sample API Gateway events.

Synchronous like Lambda itself; the JWKS comes from a small threaded HTTP
server so the authorizer's own event loop is the only one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ec_recommend.platform.auth import lambda_authorizer
from tests.unit.auth.keys import (
    CLIENT_ID,
    ISSUER,
    SigningKey,
    access_claims,
    id_claims,
    unsigned,
)

METHOD_ARN = "arn:aws:execute-api:ap-northeast-1:123456789012:a1b2c3d4e5/prod/GET/api/v1/cart"


class Jwks:
    def __init__(self, key: SigningKey) -> None:
        self.document = {"keys": [key.public_jwk()]}
        self.status = 200
        self.hits = 0


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def jwks(key: SigningKey) -> Iterator[tuple[Jwks, str]]:
    state = Jwks(key)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits += 1
            body = json.dumps(state.document).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def handler(jwks: tuple[Jwks, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The module's ``handler`` at a cold start, configured by environment."""
    _, url = jwks
    monkeypatch.setenv("EC_PROFILE", "production")
    monkeypatch.setenv("EC_COGNITO_USER_POOL_ID", "ap-northeast-1_TestPool")
    monkeypatch.setenv("EC_COGNITO_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("EC_COGNITO_ISSUER", ISSUER)
    monkeypatch.setenv("EC_COGNITO_JWKS_URL", url)
    monkeypatch.setattr(lambda_authorizer, "_authorizer", None)
    yield lambda_authorizer.handler
    if lambda_authorizer._authorizer is not None:
        lambda_authorizer._authorizer.close()


def token_event(authorization: str) -> dict[str, Any]:
    return {"type": "TOKEN", "authorizationToken": authorization, "methodArn": METHOD_ARN}


def request_event(headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "resource": "/api/v1/cart",
        "path": "/api/v1/cart",
        "httpMethod": "GET",
        "headers": headers,
        "queryStringParameters": {},
        "pathParameters": {},
        "stageVariables": {},
        "requestContext": {"accountId": "123456789012", "apiId": "a1b2c3d4e5", "stage": "prod"},
    }


def statement(response: dict[str, Any]) -> dict[str, Any]:
    document = response["policyDocument"]
    assert document["Version"] == "2012-10-17"
    [only] = document["Statement"]
    assert only["Action"] == "execute-api:Invoke"
    assert only["Resource"] == METHOD_ARN
    return dict(only)


def test_token_event_with_a_valid_id_token_is_allowed(handler: Any, key: SigningKey) -> None:
    response = handler(token_event(f"Bearer {key.sign(id_claims())}"), None)
    assert statement(response)["Effect"] == "Allow"
    assert response["principalId"] == "0f7c-user-sub"
    assert response["context"] == {
        "userId": "0f7c-user-sub",
        "email": "hanako@example.com",
        "roles": "seller",
        "sellerId": "seller-123",
    }  # no permissions: the services decide by role and ownership, in one place
    # API Gateway only accepts scalar context values.
    assert all(isinstance(value, str) for value in response["context"].values())


def test_request_event_reads_the_authorization_header_in_any_case(
    handler: Any, key: SigningKey
) -> None:
    response = handler(
        request_event({"authorization": f"bearer {key.sign(access_claims())}"}), None
    )
    assert statement(response)["Effect"] == "Allow"
    assert response["context"]["roles"] == "customer"
    assert response["context"]["email"] == ""
    assert response["context"]["sellerId"] == ""


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "garbage", "Bearer not.a.jwt"],
)
def test_missing_or_malformed_authorization_is_denied(handler: Any, authorization: str) -> None:
    response = handler(token_event(authorization), None)
    assert statement(response)["Effect"] == "Deny"
    assert response["principalId"] == "anonymous"
    assert "context" not in response


def test_request_event_without_the_header_is_denied(handler: Any) -> None:
    assert statement(handler(request_event({"Host": "example.com"}), None))["Effect"] == "Deny"


@pytest.mark.parametrize(
    "forge",
    [
        lambda key: key.sign(id_claims(exp=int(time.time()) - 60)),
        lambda key: key.sign(id_claims(iss="https://evil.example.com/pool")),
        lambda key: key.sign(id_claims(aud="other-client")),
        lambda key: key.sign(id_claims(token_use="refresh")),
        lambda key: key.sign(id_claims(), kid="unknown"),
        lambda key: SigningKey.generate(key.kid).sign(id_claims()),
        lambda key: unsigned({"alg": "none", "kid": key.kid}, id_claims()),
    ],
    ids=["expired", "issuer", "audience", "token_use", "kid", "signature", "alg-none"],
)
def test_bad_tokens_are_denied(handler: Any, key: SigningKey, forge: Any) -> None:
    response = handler(token_event(f"Bearer {forge(key)}"), None)
    assert statement(response)["Effect"] == "Deny"
    assert "context" not in response


def test_configuration_and_keys_are_loaded_once_per_container(
    handler: Any, key: SigningKey, jwks: tuple[Jwks, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, _ = jwks
    token = key.sign(id_claims())
    assert statement(handler(token_event(f"Bearer {token}"), None))["Effect"] == "Allow"
    monkeypatch.setenv("EC_COGNITO_CLIENT_ID", "changed-after-cold-start")
    assert statement(handler(token_event(f"Bearer {token}"), None))["Effect"] == "Allow"
    assert state.hits == 1


def test_unreachable_keys_fail_the_invocation_instead_of_denying(
    handler: Any, key: SigningKey, jwks: tuple[Jwks, str]
) -> None:
    state, _ = jwks
    state.status = 503
    with pytest.raises(Exception, match="unavailable"):
        handler(token_event(f"Bearer {key.sign(id_claims())}"), None)


def test_event_without_method_arn_is_rejected(handler: Any, key: SigningKey) -> None:
    with pytest.raises(ValueError, match="methodArn"):
        handler({"type": "TOKEN", "authorizationToken": f"Bearer {key.sign(id_claims())}"}, None)
