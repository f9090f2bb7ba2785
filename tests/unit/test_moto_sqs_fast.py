"""Which requests the local broker's fast SQS path answers itself, and which
it leaves to moto (its answers are compared with moto's in
``tests/integration/events/test_moto_sqs_fast.py``)."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from ec_recommend.runtime.moto_sqs_fast import answering_fast
from tests import wsgi_exchange

REGION = "eu-west-3"
AUTHORIZATION = wsgi_exchange.signed_for("sqs", REGION)


class Served(wsgi_exchange.Served):
    """A JSON request posted to the SQS fast path."""

    def __init__(self) -> None:
        super().__init__(answering_fast)

    def call(self, target: str, params: Any) -> Any:
        body = json.dumps(params).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/",
            "HTTP_HOST": "127.0.0.1:4566",
            "wsgi.url_scheme": "http",
            "CONTENT_TYPE": "application/x-amz-json-1.0",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_X_AMZ_TARGET": target,
            "HTTP_AUTHORIZATION": AUTHORIZATION,
            "wsgi.input": io.BytesIO(body),
        }

        answer = self.serve(environ)
        return json.loads(answer) if self.status.startswith("200") else answer


@pytest.fixture
def queue_url() -> str:
    name = f"fast-{uuid.uuid4().hex[:8]}"
    backend = sqs_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend.create_queue(name)
    for body in ("one", "two"):
        backend.send_message(name, body, message_attributes={})
    return f"http://127.0.0.1:4566/{DEFAULT_ACCOUNT_ID}/{name}"


RECEIVE = "AmazonSQS.ReceiveMessage"
DELETE = "AmazonSQS.DeleteMessageBatch"


def test_a_consumer_s_receive_and_delete_are_answered_without_moto(queue_url: str) -> None:
    served = Served()
    received = served.call(
        RECEIVE,
        {
            "QueueUrl": queue_url,
            "MaxNumberOfMessages": 10,
            "WaitTimeSeconds": 0,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
            "MessageAttributeNames": ["All"],
        },
    )
    assert served.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert sorted(m["Body"] for m in received["Messages"]) == ["one", "two"]
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in received["Messages"]} == {"1"}

    entries = [
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
        for i, m in enumerate(received["Messages"])
    ]
    deleted = served.call(DELETE, {"QueueUrl": queue_url, "Entries": entries})

    assert deleted == {"Successful": [{"Id": "0"}, {"Id": "1"}], "Failed": []}
    assert served.to_moto == []
    assert served.call(RECEIVE, {"QueueUrl": queue_url, "MaxNumberOfMessages": 10}) == {}


@pytest.mark.parametrize(
    ("target", "params"),
    [
        ("AmazonSQS.SendMessage", {"QueueUrl": "{url}", "MessageBody": "x"}),
        (RECEIVE, {"QueueUrl": "{url}", "ReceiveRequestAttemptId": "a"}),
        (RECEIVE, {"QueueUrl": "{url}", "MaxNumberOfMessages": 11}),
        (RECEIVE, {"QueueUrl": "{url}", "MaxNumberOfMessages": "10"}),
        (RECEIVE, {"QueueUrl": "{url}", "WaitTimeSeconds": 21}),
        (RECEIVE, {"QueueUrl": "{url}", "VisibilityTimeout": 43201}),
        (RECEIVE, {"QueueUrl": "{url}-gone"}),
        (RECEIVE, ["not", "an", "object"]),
        (DELETE, {"QueueUrl": "{url}", "Entries": []}),
        (DELETE, {"QueueUrl": "{url}", "Entries": [{"Id": "a", "ReceiptHandle": "r"}] * 2}),
        (DELETE, {"QueueUrl": "{url}", "Entries": [{"Id": "a"}]}),
    ],
)
def test_anything_else_goes_to_moto_with_its_body(queue_url: str, target: str, params: Any) -> None:
    if isinstance(params, dict):
        params = {
            k: v.format(url=queue_url) if isinstance(v, str) else v for k, v in params.items()
        }
    served = Served()

    assert served.call(target, params) == b"moto"
    assert served.to_moto == [json.dumps(params).encode()]
    # Nothing was received on the way: both messages are still there to take.
    left = served.call(RECEIVE, {"QueueUrl": queue_url, "MaxNumberOfMessages": 10})
    assert sorted(m["Body"] for m in left["Messages"]) == ["one", "two"]
