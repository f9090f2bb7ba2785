"""Tuned aiobotocore clients send the requests untuned ones would, and they arrive.

``aws_tuning`` encodes query-protocol bodies itself, caches the User-Agent
and signs with ``TunedSigV4Auth``; the first tests compare every byte of the
signed requests a tuned and an untuned client make (the clock frozen, so the
signatures match too), with static, session and refreshed credentials and
across a change of day; the others deliver through moto and read back what
arrived.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiobotocore.awsrequest import AioAWSResponse
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.exceptions import ParamValidationError

from ec_recommend.config import EventsConfig
from ec_recommend.platform.aws import open_aws_client
from ec_recommend.platform.aws_tuning import tune_client
from ec_recommend.platform.events.aws import aws_client, prefixed
from ec_recommend.platform.sigv4 import TunedSigV4Auth
from ec_recommend.runtime.local_aws import LocalAws, moto_server
from tests.conftest import wait_for

pytestmark = pytest.mark.asyncio

# What urlencode escapes one way or another, raw UTF-8 and escaped JSON.
TRICKY = [
    json.dumps({"name": "抹茶 Matcha 100g", "note": "a+b=c&d 100% ~ok~"}),
    json.dumps({"subject": "ご注文ありがとうございます 🍵", "total": "¥6,800"}, ensure_ascii=False),
    "plain text with spaces, quotes \" ' and symbols !*()[]{}<>#?/\\",
    "tab\tnewline\nreturn\r end",
]


class Sent(Exception):
    """Raised by the capturing handler: the request is recorded, not sent."""


def capture(client: Any) -> list[tuple[str, str, dict[str, str], bytes]]:
    """Each request ``client`` would send: method, URL, headers, body bytes."""
    requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def before_send(request: Any, **_: Any) -> None:
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        requests.append((request.method, request.url, dict(request.headers.items()), body or b""))
        raise Sent

    client.meta.events.register("before-send", before_send)
    return requests


@pytest_asyncio.fixture
async def clients() -> AsyncIterator[Callable[[str], Awaitable[tuple[Any, Any]]]]:
    """``await pair("sns")``: an untuned and a tuned client, same session and settings."""
    session = get_session()
    async with AsyncExitStack() as stack:

        async def pair(service: str) -> tuple[Any, Any]:
            made = []
            for _ in range(2):
                made.append(
                    await stack.enter_async_context(
                        session.create_client(
                            service,  # type: ignore[call-overload]
                            region_name="ap-northeast-1",
                            endpoint_url="http://127.0.0.1:9",  # never reached
                            aws_access_key_id="AKIDEXAMPLE",
                            aws_secret_access_key="secret",
                            config=AioConfig(retries={"max_attempts": 1, "mode": "standard"}),
                        )
                    )
                )
            tune_client(made[1])
            return made[0], made[1]

        yield pair


NOW = datetime.datetime(2026, 12, 1, 6, 0, 0)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> list[datetime.datetime]:
    """The signing clock (``frozen[0]``, settable) and the invocation id.

    All else in a request is deterministic.
    """
    import botocore.auth
    import botocore.endpoint

    clock = [NOW]
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: clock[0])
    invocation = uuid.UUID(int=1)
    monkeypatch.setattr(botocore.endpoint.uuid, "uuid4", lambda: invocation)
    return clock


async def requests_of(client: Any, *calls: Callable[[Any], Awaitable[Any]]) -> list[Any]:
    """The requests ``calls`` make through ``client``, in order (none is sent)."""
    requests = capture(client)
    for call in calls:
        with pytest.raises(Sent):
            await call(client)
    return requests


def publish_batch(sns: Any) -> Awaitable[Any]:
    return sns.publish_batch(
        TopicArn="arn:aws:sns:ap-northeast-1:123456789012:t-order-events",
        PublishBatchRequestEntries=[
            {
                "Id": str(i),
                "Message": message,
                "MessageAttributes": {
                    "type": {"DataType": "String", "StringValue": "order.created"}
                },
            }
            for i, message in enumerate(TRICKY)
        ],
    )


def send_bulk(ses: Any) -> Awaitable[Any]:
    return ses.send_bulk_templated_email(
        Source="shop@example.com",
        Template="ec-recommend-message",
        DefaultTemplateData="{}",
        Destinations=[
            {"Destination": {"ToAddresses": [f"c{i}@example.com"]}, "ReplacementTemplateData": data}
            for i, data in enumerate(TRICKY)
        ],
    )


def send_message_batch(sqs: Any) -> Awaitable[Any]:
    return sqs.send_message_batch(
        QueueUrl="http://127.0.0.1:9/123456789012/q",
        Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(TRICKY)],
    )


def receive_message(sqs: Any) -> Awaitable[Any]:
    """The consumers' worker's receive."""
    return sqs.receive_message(
        QueueUrl="http://127.0.0.1:9/123456789012/q",
        MaxNumberOfMessages=10,
        WaitTimeSeconds=0,
        MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        MessageAttributeNames=["All"],
    )


def delete_message_batch(sqs: Any) -> Awaitable[Any]:
    return sqs.delete_message_batch(
        QueueUrl="http://127.0.0.1:9/123456789012/q",
        Entries=[{"Id": str(i), "ReceiptHandle": f"r-{i}/+=抹"} for i in range(10)],
    )


CALLS = [
    ("sns", publish_batch),
    ("ses", send_bulk),
    ("sqs", send_message_batch),
    ("sqs", receive_message),
    ("sqs", delete_message_batch),
]
CALL_IDS = [
    "sns PublishBatch",
    "ses SendBulkTemplatedEmail",
    "sqs SendMessageBatch",
    "sqs ReceiveMessage",
    "sqs DeleteMessageBatch",
]


@pytest.mark.parametrize(("service", "call"), CALLS, ids=CALL_IDS)
@pytest.mark.usefixtures("frozen")
async def test_the_same_signed_request(
    clients: Callable[[str], Awaitable[tuple[Any, Any]]],
    service: str,
    call: Callable[[Any], Awaitable[Any]],
) -> None:
    plain, tuned = await clients(service)
    # Twice: the second call meets the cached User-Agent.
    expected = await requests_of(plain, call, call)
    got = await requests_of(tuned, call, call)
    assert got == expected
    assert "Authorization" in got[0][2] and "User-Agent" in got[0][2]


def refreshing_credentials(keys: list[tuple[str, str, str | None]]) -> Any:
    """Credentials that refresh on every call, to each of ``keys`` in turn.

    Each refresh expires 12 minutes on: within botocore's advisory window,
    so the next call refreshes again.
    """
    from aiobotocore.credentials import AioRefreshableCredentials
    from dateutil.tz import tzutc

    now = datetime.datetime(2026, 12, 1, 6, 0, 0, tzinfo=tzutc())
    upcoming = iter(keys)

    def refresh() -> dict[str, Any]:
        access_key, secret_key, token = next(upcoming)
        expiry = now + datetime.timedelta(minutes=12)
        return {
            "access_key": access_key,
            "secret_key": secret_key,
            "token": token,
            "expiry_time": expiry.isoformat(),
        }

    return AioRefreshableCredentials(
        "unused", "unused", None, now, refresh, "test", time_fetcher=lambda: now
    )


@pytest.mark.parametrize(("service", "call"), CALLS, ids=CALL_IDS)
async def test_the_same_signatures_as_credentials_change_and_days_pass(
    clients: Callable[[str], Awaitable[tuple[Any, Any]]],
    frozen: list[datetime.datetime],
    service: str,
    call: Callable[[Any], Awaitable[Any]],
) -> None:
    # Each call meets new credentials, or the same ones on another day: a
    # signing key kept from the call before would sign it wrong.
    keys = [
        ("ASIAFIRST", "first/secret+key", "session-token-1/+="),
        ("ASIAFIRST", "first/secret+key", "session-token-1/+="),  # the next day
        ("ASIASECOND", "second-secret", "session-token-2"),
        ("AKIATHIRD", "second-secret", None),  # same secret, no token
        ("ASIASECOND", "second-secret", "session-token-2"),
    ]
    days = [NOW, NOW + datetime.timedelta(hours=20), NOW + datetime.timedelta(hours=20)]
    days += [NOW + datetime.timedelta(hours=20)] * 2
    sent = []
    for client in await clients(service):
        client._request_signer._credentials = refreshing_credentials(keys)
        requests = capture(client)
        for day in days:
            frozen[0] = day
            with pytest.raises(Sent):
                await call(client)
        sent.append(requests)
    expected, got = sent
    assert got == expected
    authorizations = [headers["Authorization"] for _, _, headers, _ in expected]
    assert len(set(authorizations)) == len(keys) - 1  # the last repeats the third
    assert [headers.get("X-Amz-Security-Token") for _, _, headers, _ in expected] == [
        token and token.encode() for _, _, token in keys
    ]


async def test_a_tuned_client_signs_with_the_tuned_signer(
    clients: Callable[[str], Awaitable[tuple[Any, Any]]],
) -> None:
    plain, tuned = await clients("sqs")
    kwargs = {"signing_name": "sqs", "region_name": "ap-northeast-1", "signature_version": "v4"}
    assert type(await plain._request_signer.get_auth_instance(**kwargs)) is SigV4Auth
    assert type(await tuned._request_signer.get_auth_instance(**kwargs)) is TunedSigV4Auth
    # A presigned URL's signer stays botocore's.
    kwargs["signature_version"] = "v4-query"
    assert type(await tuned._request_signer.get_auth_instance(**kwargs)) is SigV4QueryAuth


@pytest.mark.usefixtures("frozen")
async def test_a_paginated_call_keeps_its_own_user_agent(
    clients: Callable[[str], Awaitable[tuple[Any, Any]]],
) -> None:
    async def list_topics(sns: Any) -> None:
        async for _ in sns.get_paginator("list_topics").paginate():
            pass

    # A plain call first fills the cache; the paginator's call registers one
    # more feature, so its User-Agent differs.
    plain, tuned = await clients("sns")
    expected = await requests_of(plain, publish_batch, list_topics, publish_batch)
    got = await requests_of(tuned, publish_batch, list_topics, publish_batch)
    assert got == expected
    assert expected[0][2]["User-Agent"] != expected[1][2]["User-Agent"]


# Through moto: what a tuned client publishes or mails arrives unchanged.


async def test_publish_batch_delivers_identical_bodies(
    local_aws: LocalAws, events_config: EventsConfig
) -> None:
    async with aws_client("sns", events_config) as sns, aws_client("sqs", events_config) as sqs:
        assert "to_string" in vars(sns._user_agent_creator)  # tuned by open_aws_client
        topic = (await sns.create_topic(Name=prefixed(events_config, "tuning")))["TopicArn"]
        queue = (await sqs.create_queue(QueueName=prefixed(events_config, "tuning")))["QueueUrl"]
        queue_arn = (await sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"]))[
            "Attributes"
        ]["QueueArn"]
        await sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        response = await sns.publish_batch(
            TopicArn=topic,
            PublishBatchRequestEntries=[
                {
                    "Id": str(i),
                    "Message": message,
                    "MessageAttributes": {
                        "type": {"DataType": "String", "StringValue": f"t {i} 抹茶+%"}
                    },
                }
                for i, message in enumerate(TRICKY)
            ],
        )
        assert len(response["Successful"]) == len(TRICKY)

        received: dict[str, str] = {}
        attributes: dict[str, str] = {}

        async def all_received() -> bool:
            got = await sqs.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )
            for message in got.get("Messages", []):
                received[message["MessageId"]] = message["Body"]
                attributes[message["Body"]] = message["MessageAttributes"]["type"]["StringValue"]
            return len(received) == len(TRICKY)

        await wait_for(all_received)
    assert sorted(received.values()) == sorted(TRICKY)
    assert {attributes[m] for m in TRICKY} == {f"t {i} 抹茶+%" for i in range(len(TRICKY))}


async def test_send_bulk_templated_email_delivers_identical_data() -> None:
    # A broker of its own: moto's state dump (data.json) answers 500 once
    # some other tests' resources are in it.
    async with moto_server() as local_aws:
        await _send_and_read_back(local_aws)


async def _send_and_read_back(local_aws: LocalAws) -> None:
    sender = "tuning@example.com"
    template = "tuning-template"
    async with open_aws_client(
        "ses", region=local_aws.region, endpoint_url=local_aws.endpoint_url
    ) as ses:
        await ses.verify_email_identity(EmailAddress=sender)
        with suppress(ses.exceptions.AlreadyExistsException):
            await ses.create_template(
                Template={"TemplateName": template, "SubjectPart": "{{s}}", "TextPart": "{{b}}"}
            )
        recipients = [f"tuning-{i}-{id(ses)}@example.com" for i in range(len(TRICKY))]
        response = await ses.send_bulk_templated_email(
            Source=sender,
            Template=template,
            DefaultTemplateData="{}",
            Destinations=[
                {"Destination": {"ToAddresses": [to]}, "ReplacementTemplateData": data}
                for to, data in zip(recipients, TRICKY, strict=True)
            ],
        )
        assert all(status.get("MessageId") for status in response["Status"])
        assert len(response["Status"]) == len(TRICKY)

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{local_aws.endpoint_url}/moto-api/data.json") as moto_state,
    ):
        state = json.loads(await moto_state.text())
    recorded = {
        destination["Destination"]["ToAddresses"][0]: destination["ReplacementTemplateData"]
        for bulk in state["ses"]["BulkTemplateMessage"]
        for destination in bulk["destinations"]
    }
    assert [recorded[to] for to in recipients] == TRICKY


# Responses: a tuned client reads every response as an untuned one does.


class _Raw:
    """An aiohttp response's body, as ``AioAWSResponse`` reads it."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def read(self) -> bytes:
        return self._body


Response = tuple[int, dict[str, str], bytes]


def answer_with(client: Any) -> list[Response]:
    """``client`` sends nothing: each call gets the next of the returned list's responses."""
    upcoming: list[Response] = []

    def before_send(request: Any, **_: Any) -> Any:
        status, headers, body = upcoming.pop(0)
        return AioAWSResponse(request.url, status, dict(headers), _Raw(body))

    client.meta.events.register("before-send", before_send)
    return upcoming


def record_responses(client: Any) -> list[Response]:
    """Each response ``client`` parses, as it came."""
    recorded: list[Response] = []

    def before_parse(response_dict: dict[str, Any], **_: Any) -> None:
        recorded.append(
            (response_dict["status_code"], dict(response_dict["headers"]), response_dict["body"])
        )

    client.meta.events.register("before-parse", before_parse)
    return recorded


async def outcome(call: Awaitable[Any]) -> Any:
    """A call's parsed response, or its error's class and parsed response."""
    try:
        return await call
    except Exception as error:
        return type(error).__name__, getattr(error, "response", str(error))


async def sqs_responses(local_aws: LocalAws, events_config: EventsConfig) -> list[Response]:
    """Real SQS answers from moto: messages with every kind of attribute, failures, errors."""
    async with aws_client("sqs", events_config) as sqs:
        responses = record_responses(sqs)
        queue = (await sqs.create_queue(QueueName=prefixed(events_config, "parsing")))["QueueUrl"]
        await sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": body,
                    "MessageAttributes": {
                        "type": {"DataType": "String", "StringValue": f"order.created 抹茶 {i}"},
                        "count": {"DataType": "Number", "StringValue": str(i * 1000)},
                        "raw": {"DataType": "Binary", "BinaryValue": bytes([i, 0, 255]) * 3},
                    },
                }
                for i, body in enumerate(TRICKY)
            ],
        )
        received = await sqs.receive_message(
            QueueUrl=queue,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        assert len(received["Messages"]) == len(TRICKY)
        assert received["Messages"][0]["MessageAttributes"]["raw"]["BinaryValue"] == b"\0\0\xff" * 3
        await sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        receipts = [m["ReceiptHandle"] for m in received["Messages"]] + ["not-a-receipt"]
        await sqs.delete_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts)],
        )
        await sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])
        with suppress(sqs.exceptions.QueueDoesNotExist):
            await sqs.receive_message(QueueUrl=f"{queue}-missing")
        assert responses[-1][0] >= 400  # the error is among them
        return responses


# Bodies botocore's parser meets rarely: nulls, unknown keys, what json reads and orjson does not.
ODD_BODIES = [
    b'{"Messages": [{"MessageId": "m", "Body": null, "Unknown": 1, "Attributes": {}}, null]}',
    b'{"Messages": [{"MessageId": "m", "MD5OfBody": "x", "Body": "\\ud800 lone"}]}',
    b'{"Messages": [{"MessageId": "m", "Attributes": {"SentTimestamp": 12345678901234567890123}}]}',
    b'{"Messages": [{"MessageId": NaN}]}',
    b'\xef\xbb\xbf{"Messages": []}',
    b'{"Messages": [{"MessageId": "a", "MessageId": "b"}]}',
    b'{"Messages": [{"Body": "tab\tinside"}]}',
    b"not json at all",
    b"",
    b"[1, 2]",
]


async def test_the_same_parsed_responses(
    clients: Callable[[str], Awaitable[tuple[Any, Any]]],
    local_aws: LocalAws,
    events_config: EventsConfig,
) -> None:
    recorded = await sqs_responses(local_aws, events_config)
    odd = [(200, {"x-amzn-requestid": "r"}, body) for body in ODD_BODIES]
    results = []
    for client in await clients("sqs"):
        upcoming = answer_with(client)
        upcoming.extend(recorded + odd)
        calls = [
            client.create_queue(QueueName="q"),
            client.send_message_batch(QueueUrl="q", Entries=[{"Id": "0", "MessageBody": "b"}]),
            receive_message(client),
            receive_message(client),
            delete_message_batch(client),
            client.get_queue_attributes(QueueUrl="q", AttributeNames=["All"]),
            receive_message(client),
        ] + [receive_message(client) for _ in ODD_BODIES]
        results.append([await outcome(call) for call in calls])
        assert not upcoming
    expected, got = results
    assert got == expected
    assert type(expected[2]) is dict and len(expected[2]["Messages"]) == len(TRICKY)
    assert expected[6][0] == "QueueDoesNotExist"


# Parameters: valid ones pass without botocore's walk, invalid ones fail as they did.


@pytest.mark.usefixtures("frozen")
async def test_valid_parameters_skip_botocores_walk(
    clients: Callable[[str], Awaitable[tuple[Any, Any]]],
) -> None:
    walked: list[str] = []
    for service, call in CALLS:
        plain, tuned = await clients(service)
        validator = tuned._serializer._param_validator

        def spied(params: Any, shape: Any, validate: Any = validator.validate) -> Any:
            walked.append(shape.name)
            return validate(params, shape)

        validator.validate = spied
        expected = await requests_of(plain, call)
        assert await requests_of(tuned, call) == expected
    assert walked == []


@pytest.mark.parametrize(
    ("service", "call"),
    [
        ("sqs", lambda sqs: sqs.receive_message(QueueUrl="q", MaxNumberOfMessages="10")),
        ("sqs", lambda sqs: sqs.receive_message(MaxNumberOfMessages=10)),
        ("sqs", lambda sqs: sqs.delete_message_batch(QueueUrl="q", Entries=[{"Id": "0"}])),
        ("sqs", lambda sqs: sqs.delete_message_batch(QueueUrl="q", Entries=[], Other=1)),
        (
            "sns",
            lambda sns: sns.publish_batch(
                TopicArn="t",
                PublishBatchRequestEntries=[
                    {"Id": "0", "Message": "m", "MessageAttributes": {"a": {"StringValue": 1}}}
                ],
            ),
        ),
    ],
)
async def test_invalid_parameters_fail_as_before(
    clients: Callable[[str], Awaitable[tuple[Any, Any]]],
    service: str,
    call: Callable[[Any], Awaitable[Any]],
) -> None:
    messages = []
    for client in await clients(service):
        with pytest.raises(ParamValidationError) as raised:
            await call(client)
        messages.append(str(raised.value))
    assert messages[0] == messages[1]
