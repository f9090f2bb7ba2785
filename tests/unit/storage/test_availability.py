"""Which connection failures are "come back later" (UNAVAILABLE), which are bugs."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc

from ec_recommend.edge.gateway.http_errors import service_error_response
from ec_recommend.platform import errors
from ec_recommend.platform.storage.availability import connection_unavailable


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _refused(sqlstate: str) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("connect", None, _DriverError(sqlstate))


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (sa_exc.TimeoutError("QueuePool limit of size 2 overflow 2 reached"), "database_busy"),
        (_refused("53300"), "database_busy"),  # too many connections (server or role)
        (_refused("57P03"), "database_unavailable"),  # the server is starting up
        (_refused("08006"), "database_unavailable"),  # connection failure
        (ConnectionRefusedError(111, "refused"), "database_unavailable"),
    ],
)
def test_no_connection_now_is_unavailable_with_a_retry_hint(
    failure: BaseException, reason: str
) -> None:
    error = connection_unavailable(failure, "order")
    assert isinstance(error, errors.Unavailable)
    assert error.details == {"reason": reason, "retry_after": "1"}
    assert "order" in error.message


@pytest.mark.parametrize(
    "failure", [_refused("28P01"), _refused("42P01"), ValueError("a bug"), RuntimeError()]
)
def test_anything_else_stays_a_bug(failure: BaseException) -> None:
    assert connection_unavailable(failure, "order") is None


def test_the_gateway_answers_503_with_retry_after() -> None:
    busy = connection_unavailable(_refused("53300"), "order")
    assert busy is not None
    response = service_error_response(busy, "req-1")
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    # no internals in the body: the generic message, no details
    assert b"53300" not in (response.body or b"")  # type: ignore[operator]


def test_every_503_says_when_to_come_back() -> None:
    response = service_error_response(errors.Unavailable("circuit to product is open"), "r")
    assert (response.status, response.headers["Retry-After"]) == (503, "1")
