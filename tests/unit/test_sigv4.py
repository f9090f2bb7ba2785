"""TunedSigV4Auth signs every request exactly as botocore's SigV4Auth does."""

from __future__ import annotations

import datetime
import io
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from ec_recommend.platform.sigv4 import SigningMemo, TunedSigV4Auth, derive_signing_key

CREDENTIALS = ReadOnlyCredentials(
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None
)
SESSION = ReadOnlyCredentials("ASIAEXAMPLE", "secret/with+symbols", "token+/=session", None)
NOW = datetime.datetime(2026, 12, 1, 6, 0, 0)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime.datetime]]:
    """The signing clock, settable: ``clock[0]`` is now."""
    import botocore.auth

    clock = [NOW]
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: clock[0])
    yield clock


def request(
    url: str = "https://sqs.ap-northeast-1.amazonaws.com/",
    headers: dict[str, Any] | None = None,
    data: Any = b'{"QueueUrl": "q"}',
    params: Any = None,
    context: dict[str, Any] | None = None,
) -> AWSRequest:
    made = AWSRequest(method="POST", url=url, headers=headers, data=data, params=params)
    made.context.update(context or {})
    return made


def sqs_headers() -> dict[str, Any]:
    return {
        "X-Amz-Target": "AmazonSQS.ReceiveMessage",
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-query-mode": "true",
        "User-Agent": "aiobotocore/3.10.0 md/Botocore#1.43.117 ua/2.1 os/linux#6 m/Z,N,D,b,e",
    }


def signed(auth: Any, make: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The headers and context after signing a fresh request from ``make``."""
    made = make()
    auth.add_auth(made)
    return dict(made.headers.items()), made.context


def tuned(
    credentials: Any = CREDENTIALS, service: str = "sqs", region: str = "ap-northeast-1"
) -> Any:
    return TunedSigV4Auth(credentials, service, region, memo=SigningMemo())


def outcome(auth: Any, make: Any) -> Any:
    """What signing gives: the headers and context, or the error botocore raised."""
    try:
        return signed(auth, make)
    except Exception as error:  # botocore's own failures must stay the same
        return type(error), str(error)


def assert_same_signature(
    make: Any, credentials: Any = CREDENTIALS, service: str = "sqs", memo: Any = None
) -> None:
    expected = outcome(SigV4Auth(credentials, service, "ap-northeast-1"), make)
    auth = TunedSigV4Auth(credentials, service, "ap-northeast-1", memo=memo or SigningMemo())
    assert outcome(auth, make) == expected


def with_header_twice() -> AWSRequest:
    made = request(headers=sqs_headers())
    made.headers["x-amzn-query-mode"] = "again"  # HTTPHeaders keeps both
    assert len(made.headers.get_all("X-Amzn-Query-Mode")) == 2
    return made


def test_signing_key_is_botocores_chain() -> None:
    auth = SigV4Auth(CREDENTIALS, "sns", "us-east-1")
    made = request(context={"timestamp": "20261201T060000Z"})
    expected = auth.signature("string to sign", made)
    key = derive_signing_key(CREDENTIALS.secret_key, "20261201", "us-east-1", "sns")
    import hmac

    assert hmac.new(key, b"string to sign", "sha256").hexdigest() == expected


def test_signing_keys_follow_a_changed_secret_date_region_or_service() -> None:
    memo = SigningMemo()
    first = memo.signing_key("a", "20261201", "r", "s")
    assert memo.signing_key("a", "20261201", "r", "s") is first
    for changed in [
        ("b", "20261201", "r", "s"),
        ("a", "20261202", "r", "s"),
        ("a", "20261201", "x", "s"),
        ("a", "20261201", "r", "t"),
    ]:
        assert memo.signing_key(*changed) == derive_signing_key(*changed) != first


@pytest.mark.parametrize(
    "make",
    [
        lambda: request(headers=sqs_headers()),
        lambda: request(headers=sqs_headers(), data="Action=Publish&Message=%E6%8A%B9"),
        lambda: request(headers=sqs_headers(), data="抹茶 as a str body"),
        lambda: request(headers=sqs_headers(), data=b""),
        lambda: request(headers=sqs_headers(), data=""),
        lambda: request(headers=sqs_headers(), data=None),
        lambda: request(headers=sqs_headers(), data={"Action": "Publish", "Message": "抹茶 +&="}),
        lambda: request(headers=sqs_headers(), data=io.BytesIO(b"a file-like body")),
        lambda: request(url="http://127.0.0.1:4566/123456789012/q", headers=sqs_headers()),
        lambda: request(url="https://sqs.ap-northeast-1.amazonaws.com:443/a/./b/../c//d%20e"),
        lambda: request(url="https://example.com/p?b=2&a=1&a=0"),
        lambda: request(url="https://example.com/p", params={"b": "2", "a": "x y", "c": 3}),
        lambda: request(headers={**sqs_headers(), "Host": "Example.COM"}),
        with_header_twice,
        lambda: request(url="https://[2001:db8::1]:443/q"),
        lambda: request(url="http://LOCALHOST:80/q"),
        lambda: request(url="http://xn--tckwe.example:8080/q"),
        lambda: request(headers={**sqs_headers(), "Expect": "100-continue", "Connection": "x"}),
        lambda: request(headers={**sqs_headers(), "X-Odd": "  many   spaces  here "}),
        lambda: request(headers={**sqs_headers(), "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}),
        lambda: request(headers={**sqs_headers(), "Date": "Tue, 01 Dec 2026 05:00:00 GMT"}),
        lambda: request(headers={**sqs_headers(), "Authorization": "old", "X-Amz-Date": "old"}),
        lambda: request(headers=sqs_headers(), context={"payload_signing_enabled": False}),
        lambda: request(
            headers=sqs_headers(),
            context={"checksum": {"request_algorithm": {"in": "trailer", "algorithm": "crc32"}}},
        ),
    ],
)
@pytest.mark.parametrize("credentials", [CREDENTIALS, SESSION], ids=["static", "session token"])
def test_the_same_authorization(make: Any, credentials: Any) -> None:
    assert_same_signature(make, credentials)


@pytest.mark.parametrize(
    "value", ["抹茶", "a\udcff", b"raw bytes", 3], ids=["non-ASCII", "surrogate", "bytes", "int"]
)
def test_an_unusual_header_value_signs_or_fails_as_botocore_does(value: Any) -> None:
    # HTTPHeaders hands a surrogate-carrying value back as a Header object,
    # and botocore cannot sign bytes or an int: the tuned signer falls back
    # to botocore's own headers, so it signs or fails alike.
    assert_same_signature(lambda: request(headers={**sqs_headers(), "X-Odd": value}))


def test_the_signatures_compared_are_real() -> None:
    headers, _ = signed(tuned(), lambda: request(headers=sqs_headers()))
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/")


def test_one_auth_reused_across_days_and_secrets(frozen_clock: list[datetime.datetime]) -> None:
    memo = SigningMemo()
    make = lambda: request(headers=sqs_headers())  # noqa: E731
    for credentials, now in [
        (CREDENTIALS, NOW),
        (CREDENTIALS, NOW + datetime.timedelta(hours=20)),  # the next day
        (SESSION, NOW + datetime.timedelta(hours=20)),  # refreshed credentials
        (CREDENTIALS, NOW + datetime.timedelta(hours=20)),
    ]:
        frozen_clock[0] = now
        expected = signed(SigV4Auth(credentials, "sqs", "ap-northeast-1"), make)
        auth = TunedSigV4Auth(credentials, "sqs", "ap-northeast-1", memo=memo)
        assert signed(auth, make) == expected


header_names = st.sampled_from(
    [
        "X-Amz-Target",
        "Content-Type",
        "User-Agent",
        "host",
        "X-Amz-Security-Token",
        "x-custom",
        "Connection",
        "X-Amzn-Trace-Id",
        "Content-MD5",
        "X-A",
    ]
)
header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    st.text(alphabet=" \t抹茶ab", max_size=8),
)


SHARED = SigningMemo()  # kept across examples: what one request leaves must not sign another


@settings(max_examples=300, deadline=None)
@given(
    headers=st.dictionaries(header_names, header_values, max_size=6),
    host=st.sampled_from(
        [
            "sqs.ap-northeast-1.amazonaws.com",
            "SQS.ap-northeast-1.amazonaws.com:443",
            "127.0.0.1:4566",
            "localhost:80",
            "[::1]:8443",
        ]
    ),
    path=st.text(alphabet="/.ab%20~-_抹", max_size=20),
    body=st.one_of(st.binary(max_size=40), st.text(max_size=40), st.none()),
    https=st.booleans(),
    credentials=st.sampled_from([CREDENTIALS, SESSION]),
)
def test_any_request_signs_the_same(
    headers: dict[str, str], host: str, path: str, body: Any, https: bool, credentials: Any
) -> None:
    url = f"{'https' if https else 'http'}://{host}/{path}"
    make = lambda: request(url=url, headers=headers, data=body)  # noqa: E731
    assert_same_signature(make, credentials, memo=SHARED)
