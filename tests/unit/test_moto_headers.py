"""The local broker's header reader gives what ``http.client.parse_headers`` gives."""

from __future__ import annotations

import http.client
import io

import pytest

from ec_recommend.runtime.moto_headers import parse_headers

ORIGINAL = http.client.parse_headers
BLOCKS = [
    b"Host: 127.0.0.1:4566\r\nContent-Type: application/x-amz-json-1.0\r\n"
    b"X-Amz-Target: AmazonSQS.ReceiveMessage\r\nContent-Length: 12\r\n\r\n{}",
    b"X-Dup: 1\r\nX-Dup: 2\r\nEmpty:\r\nNoSpace:v\r\nTrailing: a b  \r\nTab:\tt\r\n\r\n",
    b"Latin: caf\xe9\r\n\r\n",
    b"Bare: newline\nEndings: too\n\n",
    b"Folded: one\r\n two\r\nNext: x\r\n\r\n",  # a continuation: the email parser's
    b"No colon here\r\nHost: x\r\n\r\n",
    b"From x: y\r\n\r\n",
    b"Space Name: y\r\n\r\n",
    b"Host: x\r\nCut: short",  # the connection ended inside the headers
    b"\r\n",
]


def _read(parse: object, block: bytes) -> tuple[type, list[tuple[str, str]], object, int, bytes]:
    stream = io.BytesIO(block)
    message = parse(stream)  # type: ignore[operator]
    return (
        type(message),
        message._headers,
        message.get_payload(),
        len(message.defects),
        stream.read(),
    )


@pytest.mark.parametrize("block", BLOCKS)
def test_the_same_message_for_the_same_bytes(block: bytes) -> None:
    assert _read(parse_headers, block) == _read(ORIGINAL, block)


def test_the_same_limits() -> None:
    too_many = b"".join(b"H%d: v\r\n" % i for i in range(101)) + b"\r\n"
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        parse_headers(io.BytesIO(too_many))
    with pytest.raises(http.client.LineTooLong):
        parse_headers(io.BytesIO(b"Long: " + b"x" * 70000 + b"\r\n\r\n"))


def test_usual_headers_skip_the_email_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    import ec_recommend.runtime.moto_headers as moto_headers

    def refuse(**_: object) -> None:
        raise AssertionError("the email parser was asked")

    monkeypatch.setattr(moto_headers.email.parser, "Parser", refuse)
    message = parse_headers(io.BytesIO(BLOCKS[0]))
    assert message["X-Amz-Target"] == "AmazonSQS.ReceiveMessage"
    assert len(parse_headers(io.BytesIO(BLOCKS[1])).get_all("X-Dup")) == 2
