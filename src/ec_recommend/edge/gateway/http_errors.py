"""The seed's error model at the edge: typed errors -> ``{code, message, details}``.

Expected errors keep their message (it was written for the caller); anything
else becomes a 500 whose body says only that something failed, with the
request id to quote, so no internals ever reach a client.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from aiohttp import web

from ec_recommend.edge.gateway.outcomes import UnknownOutcome
from ec_recommend.platform import errors

REQUEST_ID_HEADER = "X-Request-ID"
MAX_RETRY_AFTER = 300  # seconds; a longer hint is a bug upstream, not advice


@dataclass(frozen=True)
class HttpError:
    status: int
    code: str


INVALID_REQUEST = HttpError(400, "INVALID_REQUEST")
UNAUTHORIZED = HttpError(401, "UNAUTHORIZED")
PAYMENT_DECLINED = HttpError(402, "PAYMENT_DECLINED")
FORBIDDEN = HttpError(403, "FORBIDDEN")
NOT_FOUND = HttpError(404, "NOT_FOUND")
METHOD_NOT_ALLOWED = HttpError(405, "METHOD_NOT_ALLOWED")
CONFLICT = HttpError(409, "CONFLICT")
REQUEST_TIMEOUT = HttpError(408, "INVALID_REQUEST")
PAYLOAD_TOO_LARGE = HttpError(413, "INVALID_REQUEST")
UNSUPPORTED_MEDIA_TYPE = HttpError(415, "INVALID_REQUEST")
URI_TOO_LONG = HttpError(414, "INVALID_REQUEST")
HEADERS_TOO_LARGE = HttpError(431, "INVALID_REQUEST")
NOT_IMPLEMENTED = HttpError(501, "METHOD_NOT_ALLOWED")  # a method HTTP does not know
RATE_LIMITED = HttpError(429, "RATE_LIMITED")
INTERNAL_ERROR = HttpError(500, "INTERNAL_ERROR")
SERVICE_UNAVAILABLE = HttpError(503, "SERVICE_UNAVAILABLE")
TIMEOUT = HttpError(504, "TIMEOUT")

BY_GRPC_CODE: Mapping[str, HttpError] = {
    "INVALID_ARGUMENT": INVALID_REQUEST,
    "OUT_OF_RANGE": INVALID_REQUEST,
    "UNAUTHENTICATED": UNAUTHORIZED,
    "PERMISSION_DENIED": FORBIDDEN,
    "NOT_FOUND": NOT_FOUND,
    "ALREADY_EXISTS": CONFLICT,
    "ABORTED": CONFLICT,
    "FAILED_PRECONDITION": CONFLICT,
    "RESOURCE_EXHAUSTED": RATE_LIMITED,
    "UNAVAILABLE": SERVICE_UNAVAILABLE,
    "DEADLINE_EXCEEDED": TIMEOUT,
}

# Messages of these come from the transport (addresses, OS errors): not for clients.
_GENERIC_MESSAGES: Mapping[str, str] = {
    "UNAVAILABLE": "the service is temporarily unavailable; retry later",
    "DEADLINE_EXCEEDED": "the service did not answer in time",
}

ERROR_CODES = tuple(
    sorted(
        {e.code for e in BY_GRPC_CODE.values()}
        | {PAYMENT_DECLINED.code, METHOD_NOT_ALLOWED.code, INTERNAL_ERROR.code}
    )
)


def classify(error: errors.ServiceError) -> HttpError:
    if isinstance(error, errors.PaymentDeclined):
        return PAYMENT_DECLINED
    if error.code == "RESOURCE_EXHAUSTED" and "retry_after" in error.details:
        # a service shedding load says when to come back: it is unavailable
        # for now, not the caller over its quota
        return SERVICE_UNAVAILABLE
    return BY_GRPC_CODE.get(error.code, INTERNAL_ERROR)


def retry_after(error: errors.ServiceError, kind: HttpError) -> str | None:
    """``Retry-After`` seconds for a refusal that is worth retrying, else None.

    Every 429 and 503 carries one (the contract), the service's hint when it
    gave one (a circuit's time to its trial, a shed request, a busy
    database); a 409 from ABORTED (a concurrent request with the same key or
    on the same order is still running) asks for a retry in a second.
    """
    hint = error.details.get("retry_after")
    if kind is RATE_LIMITED or kind is SERVICE_UNAVAILABLE or error.code == "ABORTED":
        hint = hint or "1"
    else:
        return None
    try:
        seconds = math.ceil(float(hint))
    except (ValueError, OverflowError):  # not a number, NaN, infinity
        seconds = 1
    return str(min(max(seconds, 1), MAX_RETRY_AFTER))


def error_body(
    kind: HttpError, message: str, details: Mapping[str, str] | None = None
) -> dict[str, object]:
    body: dict[str, object] = {"code": kind.code, "message": message}
    if details:
        body["details"] = dict(details)
    return body


def error_response(
    kind: HttpError,
    message: str,
    details: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return web.Response(
        status=kind.status,
        body=orjson.dumps(error_body(kind, message, details)),
        content_type="application/json",
        headers=headers,
    )


def service_error_response(error: errors.ServiceError, request_id: str) -> web.Response:
    kind = classify(error)
    if kind is INTERNAL_ERROR:
        return internal_error_response(request_id)
    message = _GENERIC_MESSAGES.get(error.code, error.message)
    details = None if error.code in _GENERIC_MESSAGES else error.details
    if isinstance(error, UnknownOutcome):  # written by the gateway for the client
        message, details = error.message, error.details
    wait = retry_after(error, kind)
    headers = None if wait is None else {"Retry-After": wait}
    return error_response(kind, message, details, headers)


def internal_error_response(request_id: str) -> web.Response:
    return error_response(
        INTERNAL_ERROR,
        "an internal error occurred",
        {"request_id": request_id} if request_id else None,
    )


_UNREAD_BODY: Mapping[int, tuple[HttpError, str]] = {
    408: (REQUEST_TIMEOUT, "the request body did not arrive in time"),
    413: (PAYLOAD_TOO_LARGE, "request body is too large"),
    415: (UNSUPPORTED_MEDIA_TYPE, "unsupported Content-Encoding (gzip or deflate only)"),
}


def error_from_http_exception(exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors (unknown path, wrong method, body too large) in our shape."""
    status = exc.status
    if status == 404:
        return error_response(NOT_FOUND, "no such resource")
    if status == 405:
        allowed = getattr(exc, "allowed_methods", None) or ()
        headers = {"Allow": ", ".join(sorted(allowed))} if allowed else None
        return error_response(METHOD_NOT_ALLOWED, "method not allowed for this path", None, headers)
    if status in _UNREAD_BODY:  # what is left of the body is never read: close
        kind, message = _UNREAD_BODY[status]
        response = error_response(kind, message)
        response.force_close()
        return response
    if status == 501:
        return error_response(NOT_IMPLEMENTED, "this method is not implemented")
    if 400 <= status < 500:
        return error_response(HttpError(status, INVALID_REQUEST.code), exc.reason or "bad request")
    return error_response(INTERNAL_ERROR, "an internal error occurred")
