"""form_urlencode gives byte for byte the body botocore's preparer would."""

from __future__ import annotations

import json
import random
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ec_recommend.platform.form_encoding import form_urlencode


def botocore_body(params: dict[str, Any]) -> str:
    """``AWSRequestPreparer._prepare_body`` of a dict body, spelled out."""
    pairs = [
        (
            key.encode("utf-8") if isinstance(key, str) else key,
            value.encode("utf-8") if isinstance(value, str) else value,
        )
        for key, value in params.items()
    ]
    return urlencode(pairs, doseq=True)


def envelope(i: int) -> str:
    """An event envelope as the relay publishes it (JSON, non-ASCII escaped)."""
    return json.dumps(
        {
            "id": f"e-{i}",
            "type": "order.created",
            "data": {"order": {"items": [{"name": "抹茶 Matcha 100g", "quantity": 2}]}},
            "metadata": {"traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"},
        }
    )


def publish_batch_body(messages: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"Action": "PublishBatch", "Version": "2010-03-31"}
    body["TopicArn"] = "arn:aws:sns:ap-northeast-1:123456789012:t-order-events"
    for n, message in enumerate(messages, 1):
        prefix = f"PublishBatchRequestEntries.member.{n}"
        body[f"{prefix}.Id"] = str(n)
        body[f"{prefix}.Message"] = message
        body[f"{prefix}.MessageAttributes.entry.1.Name"] = "type"
        body[f"{prefix}.MessageAttributes.entry.1.Value.DataType"] = "String"
        body[f"{prefix}.MessageAttributes.entry.1.Value.StringValue"] = "order.created"
    return body


CASES = {
    "publish batch": publish_batch_body([envelope(i) for i in range(10)]),
    "japanese, raw UTF-8": {
        "Action": "SendBulkTemplatedEmail",
        "Destinations.member.1.ReplacementTemplateData": json.dumps(
            {"subject": "ご注文ありがとうございます", "body": "合計 ¥6,800\n抹茶 x2"},
            ensure_ascii=False,
        ),
    },
    "what urllib escapes specially": {"A": "% %25 + += & = ~ . _ - * ' ( ) ! / ? # [ ]"},
    "every latin-1 character": {"A": "".join(map(chr, range(256))) * 2},
    "astral plane": {"A": "emoji 🍵🫖 and 𠮷"},
    "numbers stay str() of themselves": {"Int": 10, "Float": 1.5, "Neg": -3},
    "separators inside a value": {"A": "a\x00b", "B": "c\x01d"},
    "separators inside a key": {"A\x00": "x", "B": "y"},
    "empty values": {"A": "", "B": ""},
    "one pair": {"Action": "ListTopics"},
    "nothing": {},
}


@pytest.mark.parametrize("params", CASES.values(), ids=CASES.keys())
def test_same_as_botocore(params: dict[str, Any]) -> None:
    assert form_urlencode(params) == botocore_body(params)


def test_values_it_does_not_expect_go_through_urllib() -> None:
    # bool is not int here: urlencode gives "True", and so must we.
    params: dict[str, Any] = {"B": True, "Bytes": b"\xff x", "List": ["a", "b"], "None": None}
    assert form_urlencode(params) == botocore_body(params)


def test_random_bytes_of_every_kind() -> None:
    rng = random.Random(20261201)
    alphabet = [chr(c) for c in range(0x80)] + list("抹茶湯呑み合計¥€🍵é")
    for _ in range(300):
        params = {
            "".join(rng.choices(alphabet, k=rng.randint(1, 6))): "".join(
                rng.choices(alphabet, k=rng.randint(0, 200))
            )
            for _ in range(rng.randint(1, 12))
        }
        assert form_urlencode(params) == botocore_body(params), params


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(st.characters(blacklist_categories=["Cs"]), max_size=8),
        st.one_of(
            st.text(st.characters(blacklist_categories=["Cs"])),
            st.integers(),
            st.floats(allow_nan=False),
        ),
        max_size=10,
    )
)
def test_any_text(params: dict[str, Any]) -> None:
    assert form_urlencode(params) == botocore_body(params)


def test_lone_surrogate_fails_as_botocore_does() -> None:
    with pytest.raises(UnicodeEncodeError):
        botocore_body({"A": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        form_urlencode({"A": "\ud800"})
