"""Typed errors at the edge: status, body and the retry hints a client acts on."""

from __future__ import annotations

import orjson
import pytest

from ec_recommend.edge.gateway.http_errors import service_error_response
from ec_recommend.edge.gateway.outcomes import timed_out
from ec_recommend.edge.gateway.routes import Endpoint
from ec_recommend.platform import errors


async def _noop(request: object) -> None:
    return None


def endpoint(method: str, *, idempotent: bool = False) -> Endpoint:
    return Endpoint(method, "/api/v1/things", _noop, "a thing", idempotent=idempotent)


def answer(error: errors.ServiceError) -> tuple[int, dict[str, object], str | None]:
    response = service_error_response(error, "req-1")
    assert response.body is not None
    body = orjson.loads(response.body)  # type: ignore[arg-type]
    return response.status, body, response.headers.get("Retry-After")


@pytest.mark.parametrize(
    ("error", "status", "wait"),
    [
        (errors.Unavailable("circuit open", retry_after="27"), 503, "27"),
        (errors.Unavailable("connection refused"), 503, "1"),  # every 503 says when
        (errors.ResourceExhausted("busy", retry_after="0.4"), 503, "1"),
        (errors.ResourceExhausted("too many requests"), 429, "1"),
        (errors.ResourceExhausted("quota", retry_after="3"), 503, "3"),
        (errors.Aborted("still in progress; retry"), 409, "1"),
        (errors.AlreadyExists("key reused"), 409, None),
        (errors.Unavailable("odd hint", retry_after="soon"), 503, "1"),
        (errors.Unavailable("huge hint", retry_after="86400"), 503, "300"),
        (errors.Unavailable("no hint at all", retry_after="inf"), 503, "1"),
        (errors.Unavailable("not a number", retry_after="nan"), 503, "1"),
    ],
)
def test_retry_hints_become_retry_after(
    error: errors.ServiceError, status: int, wait: str | None
) -> None:
    got_status, _, got_wait = answer(error)
    assert (got_status, got_wait) == (status, wait)


def test_unavailable_keeps_its_internals_to_itself() -> None:
    _, body, _ = answer(errors.Unavailable("10.0.0.7:50051 refused", retry_after="2"))
    assert body == {
        "code": "SERVICE_UNAVAILABLE",
        "message": "the service is temporarily unavailable; retry later",
    }


def test_a_timed_out_read_is_a_plain_504() -> None:
    status, body, _ = answer(timed_out(endpoint("GET"), has_key=False))
    assert status == 504
    assert body == {"code": "TIMEOUT", "message": "the service did not answer in time"}


def test_a_timed_out_write_with_a_key_says_the_outcome_is_unknown_and_retry_is_safe() -> None:
    status, body, _ = answer(timed_out(endpoint("POST", idempotent=True), has_key=True))
    assert status == 504
    assert body["code"] == "TIMEOUT"
    assert body["details"] == {"outcome": "unknown", "safe_to_retry": "true"}
    assert "same Idempotency-Key is safe" in str(body["message"])


@pytest.mark.parametrize(("idempotent", "hint"), [(True, "send an Idempotency-Key"), (False, "")])
def test_a_timed_out_write_without_a_safe_retry_says_so(idempotent: bool, hint: str) -> None:
    status, body, _ = answer(timed_out(endpoint("PUT", idempotent=idempotent), has_key=False))
    assert status == 504
    assert body["details"] == {"outcome": "unknown", "safe_to_retry": "false"}
    assert "check before retrying" in str(body["message"])
    assert hint in str(body["message"])
