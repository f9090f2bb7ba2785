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
from typing import Any

from ec_recommend.runtime.moto_fast import Environ, ToMoto, account_and_region, put_in_front
from ec_recommend.runtime.moto_query_fast import (
    answering_form,
    members,
    numbered,
    parse_form,
    response_metadata,
)

_VERSION = "2010-03-31"
MAX_ENTRIES = 10  # a batch's entries, as SNS and moto allow them
_ENTRY_FIELD = re.compile(
    r"PublishBatchRequestEntries\.member\.([1-9][0-9]?)\."
    r"(Id|Message|MessageAttributes\.entry\.([1-9][0-9]?)\.(Name|Value\.DataType|Value\.StringValue))"
)
_ATTRIBUTE_FIELDS = frozenset({"Name", "Value.DataType", "Value.StringValue"})


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
    form = parse_form(body, "PublishBatch", _VERSION)
    topic_arn = form.pop("TopicArn", None)
    if topic_arn is None:
        raise ToMoto
    fields_of: dict[int, dict[str, str]] = {}
    attributes: dict[int, dict[int, dict[str, str]]] = {}
    for key, value in form.items():
        match = _ENTRY_FIELD.fullmatch(key)
        if match is None:
            raise ToMoto
        member = int(match.group(1))
        if match.group(3) is None:
            fields_of.setdefault(member, {})[match.group(2)] = value
        else:
            entry = attributes.setdefault(member, {}).setdefault(int(match.group(3)), {})
            entry[match.group(4)] = value
    if not fields_of or len(fields_of) > MAX_ENTRIES or not numbered(fields_of):
        raise ToMoto
    entries = [_entry(fields_of[n], attributes.get(n, {})) for n in range(1, len(fields_of) + 1)]
    if (
        len({entry["Id"] for entry in entries}) != len(entries)
        or not attributes.keys() <= fields_of.keys()
    ):
        raise ToMoto
    return topic_arn, entries


def _entry(member: dict[str, str], attributes: dict[int, dict[str, str]]) -> dict[str, Any]:
    if member.keys() != {"Id", "Message"} or not numbered(attributes):
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
        members("Successful", successful, ("Id", "MessageId")),
        members("Failed", failed, ("Id", "Code", "Message", "SenderFault")),
        "</PublishBatchResult>",
        response_metadata(request_id),
        "</PublishBatchResponse>",
    ]
    return "".join(parts)


# ``app`` with the PublishBatch fast path in front of it.
answering_fast = answering_form("sns", "PublishBatch", answer, lambda: str(uuid.uuid4()))


def install() -> None:
    """Answer the relays' PublishBatch in this process's moto server."""
    put_in_front(answering_fast, "_ec_sns_fast")
