"""The local broker's two busiest SQS calls, answered straight from moto's backend.

Under checkout, ReceiveMessage and DeleteMessageBatch are about four in five
of the calls the broker serves, and each spent about three quarters of its
CPU around the work itself: werkzeug's request and Flask's dispatch, moto's
parsing of the body against the service model, its response classes and
its serializer. The calls themselves are small: find the queue, ask the
backend to receive or delete, write the messages out as JSON.

For a request of the shape the consumers send (the JSON protocol, the
parameters below and nothing else, values in range), ``answer`` makes the
same backend call moto's ``SQSResponse`` makes, with the same account and
region, and writes the same fields it writes. Anything else goes to moto as
before: another action or parameter, a value out of range, a queue that
does not exist, duplicate receipts, an empty batch. So every error still
reads as moto writes it; ``tests/integration/events/test_moto_sqs_fast.py``
compares the answers of both paths as the AWS client parses them.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable
from typing import Any

from ec_recommend.runtime.moto_fast import (
    Environ,
    StartResponse,
    ToMoto,
    WsgiApp,
    account_and_region,
    put_in_front,
    read_body,
)

_JSON = "application/x-amz-json-1.0"
_RECEIVE = "AmazonSQS.ReceiveMessage"
_DELETE_BATCH = "AmazonSQS.DeleteMessageBatch"
_RECEIVE_PARAMS = frozenset(
    {
        "QueueUrl",
        "MaxNumberOfMessages",
        "WaitTimeSeconds",
        "VisibilityTimeout",
        "AttributeNames",
        "MessageSystemAttributeNames",
        "MessageAttributeNames",
    }
)
_DELETE_PARAMS = frozenset({"QueueUrl", "Entries"})
MAX_VISIBILITY_TIMEOUT = 43200  # seconds, as moto checks it
# The system attributes moto's ReceiveMessage knows, in its order.
SYSTEM_ATTRIBUTES = (
    "AWSTraceHeader",
    "ApproximateFirstReceiveTimestamp",
    "ApproximateReceiveCount",
    "MessageDeduplicationId",
    "MessageGroupId",
    "SenderId",
    "SentTimestamp",
    "SequenceNumber",
)


def answering_fast(app: WsgiApp) -> WsgiApp:
    """``app`` with the fast path in front of it."""

    def serve(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target != _RECEIVE and target != _DELETE_BATCH:
            return app(environ, start_response)
        body = read_body(environ)
        try:
            result = answer(environ, target, body)
        except ToMoto:
            return app(environ, start_response)
        payload = json.dumps(result).encode()
        start_response(
            "200 OK",
            [
                ("Content-Type", _JSON),
                ("Content-Length", str(len(payload))),
                ("x-amzn-RequestId", str(uuid.uuid4())),
                ("server", "amazon.com"),
            ],
        )
        return [payload]

    return serve


def answer(environ: Environ, target: str, body: bytes) -> dict[str, Any]:
    """The JSON answer to ``target``; ``ToMoto`` when it is moto's to give."""
    if not str(environ.get("CONTENT_TYPE", "")).startswith(_JSON):
        raise ToMoto
    try:
        params = json.loads(body)
    except ValueError:
        raise ToMoto from None
    if not isinstance(params, dict):
        raise ToMoto
    backend = _backend(environ)
    if target == _RECEIVE:
        return _receive(backend, params)
    return _delete_batch(backend, params)


def _backend(environ: Environ) -> Any:
    """The SQS backend moto's ``SQSResponse`` would use."""
    from moto.sqs.models import sqs_backends
    from moto.sqs.responses import SQSResponse

    account, region = account_and_region(environ, "sqs", SQSResponse)
    return sqs_backends[account][region]


def _queue_name(backend: Any, params: dict[str, Any]) -> str:
    from moto.sqs.exceptions import QueueDoesNotExist

    url = params.get("QueueUrl")
    if not isinstance(url, str) or not url:
        raise ToMoto
    name = url.split("/")[-1] if url.startswith(("http://", "https://")) else url
    try:
        backend.get_queue(name)
    except QueueDoesNotExist:
        raise ToMoto from None
    return name


def _whole(value: Any, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ToMoto
    return value


def _names(params: dict[str, Any], key: str) -> list[str]:
    names = params.get(key, [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ToMoto
    return names


def _receive(backend: Any, params: dict[str, Any]) -> dict[str, Any]:
    if not params.keys() <= _RECEIVE_PARAMS:
        raise ToMoto
    name = _queue_name(backend, params)
    queue = backend.get_queue(name)
    count = _whole(params.get("MaxNumberOfMessages", 1), 1, 10)
    wait = _whole(
        params.get("WaitTimeSeconds", int(queue.receive_message_wait_time_seconds)), 0, 20
    )
    visibility = params.get("VisibilityTimeout", queue.visibility_timeout)
    if params.get("VisibilityTimeout") is not None:
        visibility = _whole(visibility, 0, MAX_VISIBILITY_TIMEOUT)
    wanted = set(_names(params, "AttributeNames")) | set(
        _names(params, "MessageSystemAttributeNames")
    )
    attribute_names = _names(params, "MessageAttributeNames")
    included = [n for n in SYSTEM_ATTRIBUTES if "All" in wanted or n in wanted]
    messages = backend.receive_message(name, count, wait, visibility, attribute_names)
    answered = [_message(message, included) for message in messages]
    return {"Messages": answered} if answered else {}


def _message(message: Any, included: list[str]) -> dict[str, Any]:
    """One received message, with the fields moto's ``SQSResponse`` writes."""
    out: dict[str, Any] = {
        "MessageId": message.id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.body_md5,
        "Body": message.body,
    }
    if len(message.message_attributes):
        out["MessageAttributes"] = {
            name: _attribute_value(value) for name, value in message.message_attributes.items()
        }
        out["MD5OfMessageAttributes"] = message.attribute_md5
    if included:
        out["Attributes"] = _system_attributes(message, included)
    return out


def _attribute_value(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute's value as JSON carries it: binary data in base64,
    as moto's serializer writes a blob."""
    out = dict(value)
    if isinstance(out.get("BinaryValue"), bytes):
        out["BinaryValue"] = base64.b64encode(out["BinaryValue"]).decode("ascii")
    if "BinaryListValues" in out:
        out["BinaryListValues"] = [
            base64.b64encode(item).decode("ascii") if isinstance(item, bytes) else item
            for item in out["BinaryListValues"]
        ]
    return out


def _system_attributes(message: Any, included: list[str]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for name in included:
        if name == "SenderId":
            attributes[name] = message.sender_id
        elif name == "SentTimestamp":
            attributes[name] = str(message.sent_timestamp)
        elif name == "ApproximateReceiveCount":
            attributes[name] = str(message.approximate_receive_count)
        elif name == "ApproximateFirstReceiveTimestamp":
            attributes[name] = str(message.approximate_first_receive_timestamp)
        elif name == "MessageDeduplicationId" and message.deduplication_id is not None:
            attributes[name] = message.deduplication_id
        elif name == "MessageGroupId" and message.group_id is not None:
            attributes[name] = message.group_id
        elif name == "AWSTraceHeader":
            trace = (message.system_attributes or {}).get("AWSTraceHeader")
            if trace:
                attributes[name] = trace.get("StringValue")
        elif name == "SequenceNumber" and message.sequence_number is not None:
            attributes[name] = message.sequence_number
    return attributes


def _delete_batch(backend: Any, params: dict[str, Any]) -> dict[str, Any]:
    if not params.keys() <= _DELETE_PARAMS:
        raise ToMoto
    name = _queue_name(backend, params)
    entries = params.get("Entries")
    if not isinstance(entries, list) or not entries:
        raise ToMoto
    receipts: set[str] = set()
    for entry in entries:
        if (
            not isinstance(entry, dict)
            or entry.keys() != {"Id", "ReceiptHandle"}
            or not isinstance(entry["ReceiptHandle"], str)
            or entry["ReceiptHandle"] in receipts
        ):
            raise ToMoto
        receipts.add(entry["ReceiptHandle"])
    deleted, failed = backend.delete_message_batch(name, entries)
    return {"Successful": [{"Id": entry_id} for entry_id in deleted], "Failed": failed}


def install() -> None:
    """Answer the consumers' receives and batch deletes in this process's moto server."""
    put_in_front(answering_fast, "_ec_sqs_fast")
