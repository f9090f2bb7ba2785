"""The client turns error bodies into typed errors."""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from ec_recommend import client as api


def response(status: int, body: object, **headers: str) -> api.Response:
    return api.Response(status, CIMultiDictProxy(CIMultiDict(headers)), body)


def test_codes_become_their_error_types() -> None:
    for code, cls in api.ERRORS.items():
        error = api.error_from(response(418, {"code": code, "message": "m"}))
        assert type(error) is cls
    conflict = api.error_from(
        response(
            409,
            {"code": "CONFLICT", "message": "short", "details": {"product_id": "p"}},
            **{"X-Request-ID": "r1"},
        )
    )
    assert isinstance(conflict, api.Conflict)
    assert (conflict.status, conflict.details, conflict.request_id) == (
        409,
        {"product_id": "p"},
        "r1",
    )
    limited = api.error_from(
        response(429, {"code": "RATE_LIMITED", "message": "slow"}, **{"Retry-After": "17"})
    )
    assert isinstance(limited, api.RateLimited) and limited.retry_after == 17


def test_bodies_that_are_not_ours() -> None:
    proxy = api.error_from(response(502, None))
    assert isinstance(proxy, api.InternalError) and proxy.status == 502
    odd = api.error_from(response(418, {"unexpected": True}))
    assert type(odd) is api.ApiError and odd.status == 418
