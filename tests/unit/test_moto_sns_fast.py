"""Which PublishBatch requests the local broker's fast SNS path answers itself,
and which it leaves to moto (its answers and deliveries are compared with
moto's in ``tests/integration/events/test_moto_sns_fast.py``)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from ec_recommend.runtime.moto_sns_fast import answering_fast
from tests import wsgi_exchange

REGION = "eu-west-3"
AUTHORIZATION = wsgi_exchange.signed_for("sns", REGION)
NS = "{http://sns.amazonaws.com/doc/2010-03-31/}"
ENTRY = "PublishBatchRequestEntries.member"


class Served(wsgi_exchange.FormServed):
    """A PublishBatch form posted to the SNS fast path."""

    def __init__(self) -> None:
        super().__init__(answering_fast, AUTHORIZATION)


def _form(topic_arn: str, entries: list[dict[str, str]], **top: str) -> dict[str, str]:
    """A PublishBatch form as the AWS client writes it; ``entries`` hold each
    member's fields by their names under the member."""
    form = {"Action": "PublishBatch", "Version": "2010-03-31", "TopicArn": topic_arn, **top}
    for number, fields in enumerate(entries, start=1):
        for field, value in fields.items():
            form[f"{ENTRY}.{number}.{field}"] = value
    return form


def _entry(entry_id: str, message: str, event_type: str = "order.paid") -> dict[str, str]:
    return {
        "Id": entry_id,
        "Message": message,
        "MessageAttributes.entry.1.Name": "event_type",
        "MessageAttributes.entry.1.Value.DataType": "String",
        "MessageAttributes.entry.1.Value.StringValue": event_type,
        "MessageAttributes.entry.2.Name": "lines",
        "MessageAttributes.entry.2.Value.DataType": "Number",
        "MessageAttributes.entry.2.Value.StringValue": "2.5",
    }


@pytest.fixture
def subscribed() -> tuple[str, str]:
    """A topic, and the SQS queue it delivers to raw, by name."""
    name = f"fast-{uuid.uuid4().hex[:8]}"
    sns = sns_backends[DEFAULT_ACCOUNT_ID][REGION]
    sqs = sqs_backends[DEFAULT_ACCOUNT_ID][REGION]
    topic = sns.create_topic(name)
    queue = sqs.create_queue(name)
    subscription = sns.subscribe(topic.arn, queue.queue_arn, "sqs")
    sns.set_subscription_attributes(subscription.arn, "RawMessageDelivery", "true")
    return topic.arn, name


def test_a_relay_s_batch_is_answered_without_moto(subscribed: tuple[str, str]) -> None:
    topic_arn, queue = subscribed
    served = Served()
    body = urlencode(_form(topic_arn, [_entry("a & <b>", "抹茶 & <b>"), _entry("2", "two")]))

    answer = ET.fromstring(served.call(body.encode()))

    assert served.to_moto == []
    assert served.status == "200 OK" and served.headers["Content-Type"] == "text/xml"
    result = answer.find(f"{NS}PublishBatchResult")
    assert result is not None
    ids = [member.findtext(f"{NS}Id") for member in result.iter(f"{NS}member")]
    assert ids == ["a & <b>", "2"]
    request_id = answer.findtext(f"{NS}ResponseMetadata/{NS}RequestId")
    assert request_id == served.headers["x-amzn-RequestId"]
    delivered = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].receive_message(queue, 10, 0, 30, ["All"])
    assert sorted(m.body for m in delivered) == ["two", "抹茶 & <b>"]
    assert delivered[0].message_attributes["lines"] == {"DataType": "Number", "StringValue": "2.5"}


def _to_moto_cases(topic_arn: str) -> list[dict[str, str] | bytes]:
    entry = _entry("1", "m")
    return [
        _form(topic_arn, [entry], Action="Publish"),
        {k: v for k, v in _form(topic_arn, [entry]).items() if k != "Version"},
        _form(topic_arn + "-gone", [entry]),
        _form(topic_arn, [{**entry, "Subject": "hello"}]),
        _form(topic_arn, [{**entry, "MessageGroupId": "g"}]),
        _form(topic_arn, [{"Id": "1"}]),
        _form(topic_arn, [{**entry, "Message": ""}]),
        _form(topic_arn, [{**entry, "MessageAttributes.entry.1.Value.DataType": "String.x"}]),
        _form(topic_arn, [{**entry, "MessageAttributes.entry.2.Value.StringValue": "many"}]),
        _form(
            topic_arn,
            [
                {
                    "Id": "1",
                    "Message": "m",
                    "MessageAttributes.entry.1.Name": "b",
                    "MessageAttributes.entry.1.Value.DataType": "Binary",
                    "MessageAttributes.entry.1.Value.BinaryValue": "AP8=",
                }
            ],
        ),
        _form(topic_arn, [entry, {**entry, "Message": "again"}]),  # the same id twice
        _form(topic_arn, [_entry(str(i), "m") for i in range(11)]),
        {k.replace(f"{ENTRY}.1.", f"{ENTRY}.2."): v for k, v in _form(topic_arn, [entry]).items()},
        {  # an attribute's name given twice
            **_form(topic_arn, [entry]),
            f"{ENTRY}.1.MessageAttributes.entry.2.Name": "event_type",
        },
        b"Action=PublishBatch&TopicArn=\xff",
        b"Action=PublishBatch&Version=2010-03-31&TopicArn=t&TopicArn=t",
    ]


@pytest.mark.parametrize("case", range(16))
def test_anything_else_goes_to_moto_with_its_body(subscribed: tuple[str, str], case: int) -> None:
    topic_arn, queue = subscribed
    form = _to_moto_cases(topic_arn)[case]
    body = form if isinstance(form, bytes) else urlencode(form).encode()
    served = Served()

    assert served.call(body) == b"moto"
    assert served.to_moto == [body]
    assert sqs_backends[DEFAULT_ACCOUNT_ID][REGION].receive_message(queue, 10, 0, 30, []) == []


def test_only_sns_forms_are_read(subscribed: tuple[str, str]) -> None:
    topic_arn, _ = subscribed
    body = urlencode(_form(topic_arn, [_entry("1", "m")])).encode()
    for extra in (
        {"HTTP_AUTHORIZATION": AUTHORIZATION.replace("/sns/", "/sqs/")},
        {"QUERY_STRING": "Action=PublishBatch"},
        {"HTTP_X_AMZ_TARGET": "AmazonSNS.PublishBatch"},
        {"CONTENT_TYPE": "application/json"},
    ):
        served = Served()
        assert served.call(body, **extra) == b"moto"
        assert served.to_moto == [body]
