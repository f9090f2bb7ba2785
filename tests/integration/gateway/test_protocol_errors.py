"""Faults at the HTTP level, sent as raw bytes to the gateway over a socket.

Each case is a request aiohttp (or our body reading) refuses; every answer
must be the JSON error body with the right status, an X-Request-ID, no
version in ``Server``, and nothing of the request echoed back.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import orjson
import pytest
import pytest_asyncio

from ec_recommend.edge.gateway.app import GatewaySetup, create_app, serving
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.telemetry.metrics import process_metrics
from tests.integration.gateway.conftest import StaticVerifier, _verifier, gateway_config

pytestmark = pytest.mark.asyncio

SECRET = b"Bearer s3cret-token-value"
READ_TIMEOUT = 0.5
MAX_BODY = 4096


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes

    def error(self) -> dict[str, object]:
        assert self.headers.get("content-type") == "application/json", self.raw[:300]
        body: dict[str, object] = orjson.loads(self.body)
        assert set(body) <= {"code", "message", "details"}
        return body


def parse(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(lines[0].split()[1]), headers, body, raw)


@dataclass
class Edge:
    port: int

    async def send(self, data: bytes, *, then_close: bool = False) -> Answer:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(data)
            await writer.drain()
            if then_close:
                writer.close()
                return Answer(0, {}, b"", b"")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            answer = parse(head)
            length = int(answer.headers.get("content-length", "0"))
            body = await asyncio.wait_for(reader.readexactly(length), timeout=5)
        finally:
            writer.close()
        return replace(answer, body=body, raw=head + body)


@pytest_asyncio.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    config = gateway_config(tmp_path, read_timeout=READ_TIMEOUT, max_body_bytes=MAX_BODY)
    async with ClientFactory({}, pool_size=1, timeout=2) as clients:
        setup = GatewaySetup(
            config=config, verifier=lambda: _verifier(StaticVerifier()), clients=clients
        )
        async with serving(create_app(setup), "127.0.0.1", 0) as url:
            yield Edge(int(url.rsplit(":", 1)[1]))


def request(head: str, *headers: bytes, body: bytes = b"") -> bytes:
    lines = [head.encode() + b" HTTP/1.1", b"Host: shop", b"Authorization: " + SECRET, *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


LOGIN = "POST /auth/login"
LOGIN_BODY = b'{"email": "a@example.com", "password": "x"}'

REFUSALS = {
    "url over 8190 bytes": (request("GET /api/v1/products?q=" + "a" * 9000), 414),
    "header over 8190 bytes": (request("GET /api/v1/products", b"X-Big: " + b"a" * 9000), 431),
    "150 headers": (
        request("GET /api/v1/products", *(b"X-H%d: 1" % i for i in range(150))),
        431,
    ),
    "method FOO": (request("FOO /api/v1/products"), 501),
    "method PROPFIND": (request("PROPFIND /api/v1/products", b"Connection: close"), 501),
    "content-length with transfer-encoding": (
        request(LOGIN, b"Content-Length: 3", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
        400,
    ),
    "bad chunk size": (
        request(LOGIN, b"Transfer-Encoding: chunked", body=b"zz\r\nabc\r\n0\r\n\r\n"),
        400,
    ),
    "content-encoding br": (
        request(LOGIN, b"Content-Encoding: br", b"Content-Length: 2", body=b"{}"),
        415,
    ),
    "content-encoding zstd": (
        request(LOGIN, b"Content-Encoding: zstd", b"Content-Length: 2", body=b"{}"),
        415,
    ),
    "invalid gzip body": (
        request(
            LOGIN,
            b"Content-Encoding: gzip",
            b"Content-Length: 10",
            b"Connection: close",
            body=b"0123456789",
        ),
        400,
    ),
    "invalid deflate body": (
        request(
            LOGIN,
            b"Content-Encoding: deflate",
            b"Content-Length: 10",
            b"Connection: close",
            body=b"0123456789",
        ),
        400,
    ),
    "declared body over the limit": (
        request(LOGIN, b"Content-Length: %d" % (MAX_BODY + 1)),  # and no body sent
        413,
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_refusals_are_the_error_body_and_echo_nothing(
    edge: Edge, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    data, status = REFUSALS[case]
    with caplog.at_level(logging.INFO):
        answer = await edge.send(data)
    assert answer.status == status, answer.raw[:300]
    # whatever is left unread is never parsed: the connection ends here
    assert answer.raw.startswith(b"HTTP/1.0 ") or answer.headers["connection"] == "close"
    body = answer.error()
    expected = "METHOD_NOT_ALLOWED" if status == 501 else "INVALID_REQUEST"
    assert body["code"] == expected
    assert answer.headers["x-request-id"]
    assert answer.headers["server"] == "ec-recommend"
    assert b"s3cret" not in answer.raw and b"aaaa" not in answer.raw
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_valid_gzip_body_is_read(edge: Edge) -> None:
    compressed = zlib.compress(LOGIN_BODY, wbits=31)
    answer = await edge.send(
        request(
            LOGIN,
            b"Content-Encoding: gzip",
            b"Content-Length: %d" % len(compressed),
            b"Connection: close",
            body=compressed,
        )
    )
    # the body was understood: past validation, to the missing accounts backend
    assert answer.status == 503, answer.raw[:300]


def _count(status: str) -> float:
    text = process_metrics().render()[0].decode()
    prefix = 'http_request_total{endpoint="/auth/login",method="POST",service="gateway",'
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix) and f'status="{status}"' in line
    )


async def test_a_client_leaving_mid_body_is_499_not_a_server_error(
    edge: Edge, caplog: pytest.LogCaptureFixture
) -> None:
    before_499, before_500 = _count("499"), _count("500")
    with caplog.at_level(logging.INFO):
        await edge.send(request(LOGIN, b"Content-Length: 100", body=b"{"), then_close=True)
        deadline = asyncio.get_running_loop().time() + 5
        while _count("499") == before_499:
            assert asyncio.get_running_loop().time() < deadline, "not counted as 499"
            await asyncio.sleep(0.01)
    assert _count("500") == before_500
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("client closed" in r.getMessage() for r in caplog.records)


async def test_a_body_that_comes_too_slowly_is_cut_off(edge: Edge) -> None:
    started = asyncio.get_running_loop().time()
    answer = await edge.send(request(LOGIN, b"Content-Length: 100", body=b"{"))
    assert answer.status == 408
    assert answer.error()["code"] == "INVALID_REQUEST"
    assert asyncio.get_running_loop().time() - started < READ_TIMEOUT + 2


async def test_a_head_that_comes_too_slowly_is_cut_off(edge: Edge) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    try:
        writer.write(b"GET /api/v1/products HTTP/1.1\r\nHost: sh")  # and then nothing
        await writer.drain()
        # the server closes the connection: EOF, nothing answered
        assert await asyncio.wait_for(reader.read(), timeout=READ_TIMEOUT + 3) == b""
    finally:
        writer.close()


async def test_every_api_answer_counts_and_says_so(tmp_path: Path) -> None:
    config = gateway_config(tmp_path)
    config = replace(config, gateway=replace(config.gateway, rate_limit_anonymous=3))
    async with ClientFactory({}, pool_size=1, timeout=2) as clients:
        setup = GatewaySetup(
            config=config, verifier=lambda: _verifier(StaticVerifier()), clients=clients
        )
        async with serving(create_app(setup), "127.0.0.1", 0) as url:
            edge = Edge(int(url.rsplit(":", 1)[1]))
            answers = [
                await edge.send(f"{line} HTTP/1.1\r\nHost: shop\r\n\r\n".encode())
                for line in (
                    "GET /api/v1/no-such-thing",
                    "OPTIONS /api/v1/cart",
                    "GET /api/v2/anything",
                    "GET /api/v1/nothing",
                )
            ]
    assert [a.status for a in answers] == [404, 405, 404, 429]
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["ratelimit-limit"] == "3" for a in answers)
    assert answers[1].headers["allow"] == "DELETE, GET"  # what /api/v1/cart serves
    assert {a.headers["server"] for a in answers} == {"ec-recommend"}  # no versions
