"""The local broker's fast SendBulkTemplatedEmail answers, and records, as moto does.

The same sends go to moto as shipped (``python -m moto.server``) and to the
broker ``up`` runs (``moto_main``, with ``moto_ses_fast`` in front): what the
AWS client parses from each answer must match, errors included, apart from
what is random per message (ids), and so must what SES counts afterwards
(deliveries and rejects, as its send statistics report them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError

from ec_recommend.platform.aws import open_aws_client
from ec_recommend.runtime.local_aws import LocalAws
from tests.moto_child import STOCK_MOTO, moto_child

pytestmark = pytest.mark.asyncio

# A region no other test sends mail in: the broker is the session's, and its
# SES statistics are per region.
REGION = "ca-central-1"
SENDER = "shop@example.com"


@pytest.fixture(scope="module")
def stock_moto() -> Iterator[LocalAws]:
    with moto_child(STOCK_MOTO) as aws:
        yield aws


def _destination(address: str, subject: str = "ご注文ありがとうございます") -> dict[str, Any]:
    """One email as the email consumers send it."""
    data = {"subject": subject, "body": f"{subject}\n抹茶 & <b> x2 = ¥1,200 (100%)"}
    return {
        "Destination": {"ToAddresses": [address]},
        "ReplacementTemplateData": orjson.dumps(data).decode(),
    }


async def _scenario(endpoint_url: str, template: str) -> list[Any]:
    """The consumers' sends and a few they never make, then SES's counts."""
    seen: list[Any] = []
    async with open_aws_client("ses", region=REGION, endpoint_url=endpoint_url) as ses:
        await ses.verify_email_identity(EmailAddress=SENDER)
        await ses.create_template(
            Template={
                "TemplateName": template,
                "SubjectPart": "{{subject}}",
                "TextPart": "{{body}}",
            }
        )

        async def send(destinations: list[dict[str, Any]], **overrides: str) -> None:
            call = {
                "Source": SENDER,
                "Template": template,
                "DefaultTemplateData": "{}",
                "Destinations": destinations,
                **overrides,
            }
            try:
                answer = await ses.send_bulk_templated_email(**call)
            except ClientError as exc:
                error = exc.response["Error"]
                seen.append({"code": error["Code"], "message": error["Message"]})
                return
            statuses = answer["Status"]
            ids = {status.pop("MessageId") for status in statuses}
            seen.append({"statuses": statuses, "distinct_ids": len(ids)})

        await send([_destination("a@example.com"), _destination("b@example.com", "発送")])
        await send([_destination(f"buyer{n}@example.com") for n in range(50)])
        await send([_destination("a@example.com")], Source="stranger@elsewhere.example")
        await send([_destination("a@example.com")], Template=template + "-gone")
        await send([_destination(f"buyer{n}@example.com") for n in range(51)])
        await send(
            [
                {
                    "Destination": {
                        "ToAddresses": ["a@example.com"],
                        "CcAddresses": ["c@example.com"],
                    },
                    "ReplacementTemplateData": "{}",
                }
            ]
        )
        statistics = (await ses.get_send_statistics())["SendDataPoints"]
        seen.append([{k: v for k, v in point.items() if k != "Timestamp"} for point in statistics])
        seen.append((await ses.get_send_quota())["SentLast24Hours"])
    return seen


async def test_fast_bulk_sends_read_as_moto_s(local_aws: LocalAws, stock_moto: LocalAws) -> None:
    template = f"fast-{uuid.uuid4().hex[:8]}"
    ours = await _scenario(local_aws.endpoint_url, template)
    stock = await _scenario(stock_moto.endpoint_url, template)

    assert ours == stock
    # The scenario reads what it means to read.
    assert ours[0] == {"statuses": [{}, {}], "distinct_ids": 2}
    assert ours[1]["distinct_ids"] == 50
    # Moto refuses an unverified source, a missing template and too many
    # recipients; it takes a Cc address.
    assert [("code" in answer) for answer in ours[2:6]] == [True, True, True, False]
    assert ours[6] == [{"DeliveryAttempts": 54, "Rejects": 1, "Complaints": 0, "Bounces": 0}]
