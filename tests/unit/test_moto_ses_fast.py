"""Which SendBulkTemplatedEmail requests the local broker's fast SES path
answers itself, and which it leaves to moto (its answers are compared with
moto's in ``tests/integration/events/test_moto_ses_fast.py``)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from ec_recommend.runtime.moto_ses_fast import answering_fast
from tests import wsgi_exchange

REGION = "eu-west-3"
AUTHORIZATION = wsgi_exchange.signed_for("ses", REGION)
NS = "{http://ses.amazonaws.com/doc/2010-12-01/}"
SENDER = "shop@example.com"
MEMBER = "Destinations.member"


class Served(wsgi_exchange.FormServed):
    """A SendBulkTemplatedEmail form posted to the SES fast path."""

    def __init__(self) -> None:
        super().__init__(answering_fast, AUTHORIZATION)


def _form(template: str, destinations: list[dict[str, str]], **top: str) -> dict[str, str]:
    """The form the AWS client writes; ``destinations`` hold each member's
    fields by their names under the member."""
    form = {
        "Action": "SendBulkTemplatedEmail",
        "Version": "2010-12-01",
        "Source": SENDER,
        "Template": template,
        "DefaultTemplateData": "{}",
        **top,
    }
    for number, fields in enumerate(destinations, start=1):
        for field, value in fields.items():
            form[f"{MEMBER}.{number}.{field}"] = value
    return form


def _to(
    address: str, data: str = '{"subject": "ご注文 & <確認>", "body": "x+y=1%"}'
) -> dict[str, str]:
    return {"Destination.ToAddresses.member.1": address, "ReplacementTemplateData": data}


@pytest.fixture
def template() -> str:
    """A template of a verified sender's, by name; the backend's record is fresh."""
    backend = ses_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend.verify_email_identity(SENDER)
    name = f"fast-{uuid.uuid4().hex[:8]}"
    backend.add_template({"template_name": name, "subject_part": "s", "text_part": "t"})
    backend.sent_messages.clear()
    return name


def _sent() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def test_a_consumer_s_bulk_send_is_answered_without_moto(template: str) -> None:
    served = Served()
    body = urlencode(_form(template, [_to("a@example.com"), _to("b@example.com", "{}")]))

    answer = ET.fromstring(served.call(body.encode()))

    assert served.to_moto == []
    assert served.status == "200 OK" and served.headers["Content-Type"] == "text/xml"
    ids = [m.findtext(f"{NS}MessageId") for m in answer.iter(f"{NS}member")]
    assert len(ids) == 2 and all(ids) and ids[0] != ids[1]
    request_id = answer.findtext(f"{NS}ResponseMetadata/{NS}RequestId")
    assert request_id == served.headers["x-amzn-RequestId"]
    [sent] = _sent()
    assert (sent.source, sent.template, sent.template_data) == (SENDER, template, "{}")
    assert sent.destinations == [
        {
            "Destination": {"ToAddresses": ["a@example.com"]},
            "ReplacementTemplateData": '{"subject": "ご注文 & <確認>", "body": "x+y=1%"}',
        },
        {"Destination": {"ToAddresses": ["b@example.com"]}, "ReplacementTemplateData": "{}"},
    ]


def _to_moto_cases(template: str) -> list[dict[str, str] | bytes]:
    one = [_to("a@example.com")]
    form = _form(template, one)
    return [
        _form(template, one, Action="SendTemplatedEmail"),
        {k: v for k, v in form.items() if k != "Version"},
        {k: v for k, v in form.items() if k != "DefaultTemplateData"},
        _form(template, one, Source="stranger@elsewhere.example"),  # not verified
        _form(template + "-gone", one),
        _form(template, one, ConfigurationSetName="set"),
        _form(template, [{**one[0], "Destination.CcAddresses.member.1": "c@example.com"}]),
        _form(template, [{"Destination.ToAddresses.member.1": "a@example.com"}]),
        _form(template, [{**one[0], "Destination.ToAddresses.member.3": "c@example.com"}]),
        {k.replace(f"{MEMBER}.1.", f"{MEMBER}.2."): v for k, v in form.items()},
        _form(template, [_to(f"{n}@example.com") for n in range(51)]),
        _form(template, [{**one[0], "ReplacementTemplateData": ""}]),
        b"Action=SendBulkTemplatedEmail&Source=\xff",
        b"Action=SendBulkTemplatedEmail&Version=2010-12-01&Source=a&Source=a",
    ]


@pytest.mark.parametrize("case", range(14))
def test_anything_else_goes_to_moto_with_its_body(template: str, case: int) -> None:
    form = _to_moto_cases(template)[case]
    body = form if isinstance(form, bytes) else urlencode(form).encode()
    served = Served()

    assert served.call(body) == b"moto"
    assert served.to_moto == [body]
    assert _sent() == []


def test_only_ses_forms_are_read(template: str) -> None:
    body = urlencode(_form(template, [_to("a@example.com")])).encode()
    for extra in (
        {"HTTP_AUTHORIZATION": AUTHORIZATION.replace("/ses/", "/sns/")},
        {"QUERY_STRING": "Action=SendBulkTemplatedEmail"},
        {"HTTP_X_AMZ_TARGET": "SimpleEmailService.SendBulkTemplatedEmail"},
        {"CONTENT_TYPE": "application/json"},
    ):
        served = Served()
        assert served.call(body, **extra) == b"moto"
        assert served.to_moto == [body]
    assert _sent() == []
