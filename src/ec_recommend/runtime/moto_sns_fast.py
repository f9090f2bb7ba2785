"""The relays' PublishBatch, answered straight from moto's SNS backend.

With the consumers' receives and deletes answered without moto's request
machinery (``moto_sqs_fast``), most of what was left of the broker's CPU
under checkout was the relays' PublishBatch around its own work: Flask's
dispatch, moto's parsing of the form against the service model (ten
envelopes with their attributes), its response classes, and writing a
ten-line answer through its XML serializer. The work itself, publishing
each entry to the topic's subscriptions, is the backend's.

For a request of the shape the relays send (the query protocol in a form
body: a topic, one to ten entries of an id, a message and String or Number
attributes, nothing else), ``answer`` hands the backend the same entries
moto's ``SNSResponse.publish_batch`` hands it, attributes converted as it
converts them, and writes the same XML. Anything else goes to moto: another
action or parameter, a subject, a FIFO topic, a binary or custom-typed
attribute, an attribute value moto would refuse, a topic that does not
exist, duplicate or too many entries. So every error still reads as moto
writes it; ``tests/integration/events/test_moto_sns_fast.py`` compares both
paths' answers, and what reaches the subscribed queues, as the AWS client
parses them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from ec_recommend.runtime.broker_calls import action_of, service_of
from ec_recommend.runtime.moto_sqs_fast import (
    Environ,
    StartResponse,
    ToMoto,
    WsgiApp,
    account_and_region,
    put_in_front,
    read_body,
)

_FORM = "application/x-www-form-urlencoded"
_VERSION = "2010-03-31"
MAX_ENTRIES = 10  # a batch's entries, as SNS and moto allow them
_ENTRY_FIELD = re.compile(
    r"PublishBatchRequestEntries\.member\.([1-9][0-9]?)\."
    r"(Id|Message|MessageAttributes\.entry\.([1-9][0-9]?)\.(Name|Value\.DataType|Value\.StringValue))"
)
_ATTRIBUTE_FIELDS = frozenset({"Name", "Value.DataType", "Value.StringValue"})


def answering_fast(app: WsgiApp) -> WsgiApp:
    """``app`` with the PublishBatch fast path in front of it."""

    def serve(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if (
            "HTTP_X_AMZ_TARGET" in environ
            or environ.get("QUERY_STRING")
            or not str(environ.get("CONTENT_TYPE", "")).startswith(_FORM)
            or service_of(environ) != "sns"
        ):
            return app(environ, start_response)
        body = read_body(environ)
        if action_of(environ, body) != "PublishBatch":  # found without parsing the form
            return app(environ, start_response)
        request_id = str(uuid.uuid4())
        try:
            payload = answer(environ, body, request_id)
        except ToMoto:
            return app(environ, start_response)
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/xml"),
                ("Content-Length", str(len(payload))),
                ("x-amzn-RequestId", request_id),
                ("server", "amazon.com"),
            ],
        )
        return [payload]

    return serve


def answer(environ: Environ, body: bytes, request_id: str) -> bytes:
    """The XML answer to a PublishBatch; ``ToMoto`` when it is moto's to give."""
    from moto.sns.exceptions import SNSNotFoundError
    from moto.sns.models import sns_backends
    from moto.sns.responses import SNSResponse

    topic_arn, entries = parse_publish_batch(body)
    account, region = account_and_region(environ, "sns", SNSResponse)
    backend = sns_backends[account][region]
    try:
        topic = backend.get_topic(topic_arn)
    except SNSNotFoundError:
        raise ToMoto from None
    if topic.fifo_topic:
        raise ToMoto
    successful, failed = backend.publish_batch(
        topic_arn=topic_arn, publish_batch_request_entries=entries
    )
    return _response(successful, failed, request_id).encode()


def parse_publish_batch(body: bytes) -> tuple[str, list[dict[str, Any]]]:
    """The topic and the entries, as ``SNSResponse.publish_batch`` hands them
    to the backend; ``ToMoto`` for any other request."""
    try:
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise ToMoto from None
    form = dict(fields)
    if len(form) != len(fields) or any(value == "" for value in form.values()):
        raise ToMoto
    if form.pop("Action", None) != "PublishBatch" or form.pop("Version", None) != _VERSION:
        raise ToMoto
    topic_arn = form.pop("TopicArn", None)
    if topic_arn is None:
        raise ToMoto
    members: dict[int, dict[str, str]] = {}
    attributes: dict[int, dict[int, dict[str, str]]] = {}
    for key, value in form.items():
        match = _ENTRY_FIELD.fullmatch(key)
        if match is None:
            raise ToMoto
        member = int(match.group(1))
        if match.group(3) is None:
            members.setdefault(member, {})[match.group(2)] = value
        else:
            entry = attributes.setdefault(member, {}).setdefault(int(match.group(3)), {})
            entry[match.group(4)] = value
    if not members or len(members) > MAX_ENTRIES or not _numbered(members):
        raise ToMoto
    entries = [_entry(members[n], attributes.get(n, {})) for n in range(1, len(members) + 1)]
    if (
        len({entry["Id"] for entry in entries}) != len(entries)
        or not attributes.keys() <= members.keys()
    ):
        raise ToMoto
    return topic_arn, entries


def _numbered(items: dict[int, Any]) -> bool:
    """Numbered 1, 2, ... with no gap (the query protocol's lists)."""
    return sorted(items) == list(range(1, len(items) + 1))


def _entry(member: dict[str, str], attributes: dict[int, dict[str, str]]) -> dict[str, Any]:
    if member.keys() != {"Id", "Message"} or not _numbered(attributes):
        raise ToMoto
    entry: dict[str, Any] = dict(member)
    if attributes:
        converted: dict[str, dict[str, str]] = {}
        for number in range(1, len(attributes) + 1):
            fields = attributes[number]
            if fields.keys() != _ATTRIBUTE_FIELDS or fields["Name"] in converted:
                raise ToMoto
            converted[fields["Name"]] = _attribute(
                fields["Value.DataType"], fields["Value.StringValue"]
            )
        entry["MessageAttributes"] = converted
    return entry


def _attribute(data_type: str, value: str) -> dict[str, str]:
    """An attribute as ``SNSResponse`` converts it for the backend
    (``DataType`` to ``Type``, the value to ``Value``); ``ToMoto`` for a
    value it would refuse, so that moto refuses it."""
    if data_type == "Number":
        try:
            int(value)
        except ValueError:
            try:
                float(value)
            except ValueError:
                raise ToMoto from None
    elif data_type != "String":
        raise ToMoto
    return {"Type": data_type, "Value": value}


def _response(
    successful: list[dict[str, str]], failed: list[dict[str, Any]], request_id: str
) -> str:
    """What moto's serializer writes for a PublishBatch."""
    parts = [
        f'<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/{_VERSION}/">',
        "<PublishBatchResult>",
        _members("Successful", successful, ("Id", "MessageId")),
        _members("Failed", failed, ("Id", "Code", "Message", "SenderFault")),
        "</PublishBatchResult>",
        f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata>",
        "</PublishBatchResponse>",
    ]
    return "".join(parts)


def _members(name: str, items: list[dict[str, Any]], fields: tuple[str, ...]) -> str:
    if not items:
        return f"<{name}/>"
    members = "".join(
        "<member>"
        + "".join(f"<{field}>{_text(item[field])}</{field}>" for field in fields if field in item)
        + "</member>"
        for item in items
    )
    return f"<{name}>{members}</{name}>"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def install() -> None:
    """Answer the relays' PublishBatch in this process's moto server."""
    put_in_front(answering_fast, "_ec_sns_fast")
