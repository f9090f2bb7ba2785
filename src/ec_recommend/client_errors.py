"""The REST API's error responses as exceptions, one class per ``code``."""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """An error response: ``{code, message, details}`` plus the HTTP status."""

    code = "UNKNOWN"

    def __init__(
        self,
        status: int,
        message: str,
        details: Mapping[str, str] | None = None,
        *,
        code: str | None = None,
        request_id: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code or self.code}: {message}")
        self.status = status
        self.message = message
        self.details: Mapping[str, str] = dict(details or {})
        self.request_id = request_id
        self.headers: Mapping[str, str] = dict(headers or {})
        if code is not None:
            self.code = code


class InvalidRequest(ApiError):
    code = "INVALID_REQUEST"


class Unauthorized(ApiError):
    code = "UNAUTHORIZED"


class PaymentDeclined(ApiError):
    code = "PAYMENT_DECLINED"


class Forbidden(ApiError):
    code = "FORBIDDEN"


class NotFound(ApiError):
    code = "NOT_FOUND"


class MethodNotAllowed(ApiError):
    code = "METHOD_NOT_ALLOWED"


class Conflict(ApiError):
    code = "CONFLICT"


class RateLimited(ApiError):
    code = "RATE_LIMITED"

    @property
    def retry_after(self) -> int:
        return int(self.headers.get("Retry-After", "1") or 1)


class InternalError(ApiError):
    code = "INTERNAL_ERROR"


class ServiceUnavailable(ApiError):
    code = "SERVICE_UNAVAILABLE"


class Timeout(ApiError):
    code = "TIMEOUT"


ERRORS: Mapping[str, type[ApiError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        Unauthorized,
        PaymentDeclined,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        RateLimited,
        InternalError,
        ServiceUnavailable,
        Timeout,
    )
}
