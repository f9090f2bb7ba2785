"""The gateway's HTTP connections: aiohttp's own refusals in the error model.

Requests that aiohttp refuses while parsing (a request line or header over
the limit, too many headers, an unknown method, a malformed chunk, a
content encoding it cannot decode) never reach the app or its middleware;
aiohttp answers them itself, in plain text that quotes the offending bytes,
bearer tokens included. ``EdgeRequestHandler`` answers them instead with the
error body, the right status and an ``X-Request-ID``, quoting nothing.

``keepalive_timeout`` doubles as the read timeout for a request's head:
aiohttp closes a connection that has not delivered a complete request head
within it (from connect, or from the previous response), so idle or
slow-sending connections cannot pile up.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from typing import Any

from aiohttp import web, web_protocol, web_server
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    ContentEncodingError,
    LineTooLong,
)
from aiohttp.web_request import BaseRequest

from ec_recommend.edge.gateway import http_errors
from ec_recommend.edge.gateway.http_errors import HttpError
from ec_recommend.platform import errors

log = logging.getLogger(__name__)

SERVER_NAME = "ec-recommend"  # the Server header: no versions for a scanner to match
# The request line may be a little longer than one header, so a LineTooLong
# tells which of the two was too long (414 or 431) by its limit.
MAX_REQUEST_LINE = 8192
MAX_HEADER_FIELD = 8190
MAX_HEADERS = 100


# Unique per process start, then a counter: cheaper than a random id per request.
_ID_PREFIX = uuid.uuid4().hex[:16]
_id_counter = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


def refusal(exc: BaseException | None) -> tuple[HttpError, str]:
    """What to answer to a request aiohttp could not parse; the message quotes nothing."""
    if isinstance(exc, BadHttpMethod):
        return http_errors.NOT_IMPLEMENTED, "this method is not implemented"
    if isinstance(exc, LineTooLong):
        if exc.args[1:2] == (MAX_REQUEST_LINE,):
            return http_errors.URI_TOO_LONG, f"request line over {MAX_REQUEST_LINE} bytes"
        return http_errors.HEADERS_TOO_LARGE, f"a header is longer than {MAX_HEADER_FIELD} bytes"
    if isinstance(exc, BadHttpMessage) and exc.message == "Too many headers received":
        return http_errors.HEADERS_TOO_LARGE, f"more than {MAX_HEADERS} headers"
    if isinstance(exc, ContentEncodingError):
        return http_errors.UNSUPPORTED_MEDIA_TYPE, "unsupported Content-Encoding"
    return http_errors.INVALID_REQUEST, "malformed HTTP request"


ENCODINGS = frozenset({"identity", "gzip", "deflate"})  # of a request body (docs/rest-api.md)


class ClientClosed(Exception):
    """The client went away before its request was read: not a server error."""


async def read_body_bytes(request: web.Request, timeout: float) -> bytes:
    """The request's body, decoded; typed errors for what the client did wrong.

    A body that does not arrive within ``timeout`` is 408 (and the connection
    is closed); one that cannot be decoded (bad gzip, a broken chunk) is 400;
    one in an encoding the API does not take is 415, whatever decoders happen
    to be installed (aiohttp decodes br or zstd when brotli or zstandard is).
    """
    if request.headers.get("Content-Encoding", "identity").strip().lower() not in ENCODINGS:
        raise web.HTTPUnsupportedMediaType()
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout() from None
    except web_protocol.RequestPayloadError:
        raise errors.InvalidArgument(
            "body: cannot be decoded as its Content-Encoding or Transfer-Encoding says",
            field="body",
        ) from None
    except ConnectionError:
        raise ClientClosed() from None


class EdgeRequestHandler(web_protocol.RequestHandler):
    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's "Unhandled exception" for a body the client broke is no server error.

        (aiohttp drains an unread body after the response and logs what the
        client's broken encoding or vanished connection raises there.)
        """
        exc = kw.get("exc_info")
        if isinstance(exc, web_protocol.RequestPayloadError | ConnectionError):
            log.info("discarded the rest of a broken request body: %s", type(exc).__name__)
            return
        super().log_exception(*args, **kw)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        request_id = new_request_id()
        if status >= 500:
            log.error("request %s failed in aiohttp", request_id, exc_info=exc)
            response = http_errors.internal_error_response(request_id)
        else:  # the client's fault: not worth a traceback
            kind, text = refusal(exc)
            log.info(
                "refused a malformed request from %s: %s",
                request.remote,
                type(exc).__name__,
                extra={"request_id": request_id, "http_status": kind.status},
            )
            response = http_errors.error_response(kind, text)
        response.headers[http_errors.REQUEST_ID_HEADER] = request_id
        response.headers["Server"] = SERVER_NAME
        response.force_close()
        return response


class EdgeServer(web_server.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        return EdgeRequestHandler(self, loop=self._loop, **self._kwargs)


class EdgeAppRunner(web.AppRunner):
    """An AppRunner whose connections are ``EdgeRequestHandler``s."""

    def __init__(self, app: web.Application, *, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(
            app,
            keepalive_timeout=read_timeout,
            max_line_size=MAX_REQUEST_LINE,
            max_field_size=MAX_HEADER_FIELD,
            max_headers=MAX_HEADERS,
            **kwargs,
        )

    async def _make_server(self) -> web_server.Server:
        server = await super()._make_server()
        server.__class__ = EdgeServer  # same state; only the connection factory differs
        return server


async def name_the_server(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every response names the server without versions."""
    response.headers["Server"] = SERVER_NAME
