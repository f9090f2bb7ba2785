"""The broker's call counter: which service and action each AWS request is."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from ec_recommend.runtime.broker_calls import (
    CALLS_PATH,
    CallCounter,
    CountingMiddleware,
    action_of,
    service_of,
)

SIGNED_SQS = (
    "AWS4-HMAC-SHA256 Credential=testing/20260101/ap-northeast-1/sqs/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=abc"
)
SIGNED_SNS = SIGNED_SQS.replace("/sqs/", "/sns/")


def environ(**fields: Any) -> dict[str, Any]:
    return {"PATH_INFO": "/", "QUERY_STRING": "", **fields}


@pytest.mark.parametrize(
    ("request_environ", "body", "expected"),
    [
        # SQS on its JSON protocol names the action in X-Amz-Target
        (
            environ(HTTP_AUTHORIZATION=SIGNED_SQS, HTTP_X_AMZ_TARGET="AmazonSQS.ReceiveMessage"),
            b"",
            ("sqs", "ReceiveMessage"),
        ),
        # SNS and SES on the query protocol: Action in the form body...
        (
            environ(HTTP_AUTHORIZATION=SIGNED_SNS),
            b"Action=PublishBatch&Version=2010-03-31&TopicArn=arn",
            ("sns", "PublishBatch"),
        ),
        # ...wherever it stands, and only the field named exactly Action
        (
            environ(HTTP_AUTHORIZATION=SIGNED_SNS),
            b"Message=Action%3DNo&NotAction=Publish&Action=PublishBatch",
            ("sns", "PublishBatch"),
        ),
        # ...or in the query string
        (
            environ(HTTP_AUTHORIZATION=SIGNED_SNS, QUERY_STRING="Action=Publish&TopicArn=x"),
            b"",
            ("sns", "Publish"),
        ),
        # Cognito's public APIs are unsigned: the service comes from the target's prefix
        (
            environ(HTTP_X_AMZ_TARGET="AWSCognitoIdentityProviderService.InitiateAuth"),
            b"{}",
            ("cognito-idp", "InitiateAuth"),
        ),
        # moto's own API is told apart from AWS calls
        (environ(PATH_INFO="/moto-api/config"), b"", ("moto-api", "/moto-api/config")),
        (environ(), b"", ("unknown", "unknown")),
    ],
)
def test_each_request_is_named_by_its_service_and_action(
    request_environ: dict[str, Any], body: bytes, expected: tuple[str, str]
) -> None:
    assert (service_of(request_environ), action_of(request_environ, body)) == expected


def test_the_counter_tallies_per_service_and_action() -> None:
    counter = CallCounter()
    for service, action in [("sqs", "SendMessage"), ("sqs", "SendMessage"), ("ses", "SendEmail")]:
        counter.record(service, action)
    assert counter.snapshot() == {"ses": {"SendEmail": 1}, "sqs": {"SendMessage": 2}}


class Recorder:
    def __init__(self) -> None:
        self.status = ""

    def __call__(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.status = status


def test_the_middleware_counts_a_form_call_and_leaves_its_body_for_the_app() -> None:
    seen: list[bytes] = []

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(env["wsgi.input"].read(int(env["CONTENT_LENGTH"])))
        start_response("200 OK", [])
        return [b"ok"]

    counter = CallCounter()
    middleware = CountingMiddleware(app, counter)
    body = b"Action=SendEmail&Source=a%40example.com"
    request = environ(
        HTTP_AUTHORIZATION=SIGNED_SQS.replace("/sqs/", "/ses/"),
        CONTENT_TYPE="application/x-www-form-urlencoded; charset=utf-8",
        CONTENT_LENGTH=str(len(body)),
        **{"wsgi.input": io.BytesIO(body)},
    )
    assert middleware(request, Recorder()) == [b"ok"]
    assert seen == [body]
    assert counter.snapshot() == {"ses": {"SendEmail": 1}}


def test_the_report_path_answers_calls_and_queues_without_counting_itself() -> None:
    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        raise AssertionError("the report is not passed to moto")

    counter = CallCounter()
    counter.record("sqs", "DeleteMessageBatch")
    depths = {"q": {"visible": 1, "in_flight": 0, "delayed": 2}}
    middleware = CountingMiddleware(app, counter, lambda: depths)
    recorder = Recorder()
    reply = b"".join(middleware(environ(PATH_INFO=CALLS_PATH), recorder))
    assert recorder.status == "200 OK"
    assert json.loads(reply) == {"calls": {"sqs": {"DeleteMessageBatch": 1}}, "queues": depths}
    assert counter.snapshot() == {"sqs": {"DeleteMessageBatch": 1}}
