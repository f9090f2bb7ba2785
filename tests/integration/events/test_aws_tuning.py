"""Tuned aiobotocore clients send the requests untuned ones would, and they arrive.

``aws_tuning`` encodes query-protocol bodies itself and caches the
User-Agent; the first tests compare every byte of the signed requests a
tuned and an untuned client make (the clock frozen, so the signatures match
too), the others deliver through moto and read back what arrived.
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
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from ec_recommend.config import EventsConfig
from ec_recommend.platform.aws import open_aws_client
from ec_recommend.platform.aws_tuning import tune_client
from ec_recommend.platform.events.aws import aws_client, prefixed
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


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The signing clock and the invocation id: all else in a request is deterministic."""
    import botocore.auth
    import botocore.endpoint

    now = datetime.datetime(2026, 12, 1, 6, 0, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: now)
    invocation = uuid.UUID(int=1)
    monkeypatch.setattr(botocore.endpoint.uuid, "uuid4", lambda: invocation)


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


@pytest.mark.parametrize(
    ("service", "call"),
    [("sns", publish_batch), ("ses", send_bulk), ("sqs", send_message_batch)],
    ids=["sns PublishBatch", "ses SendBulkTemplatedEmail", "sqs SendMessageBatch"],
)
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
