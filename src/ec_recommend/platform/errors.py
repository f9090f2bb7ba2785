"""Expected errors, typed.

Domain code raises these; the RPC layer turns them into gRPC statuses and the
gateway into HTTP error bodies. Anything else that escapes a handler is a bug:
it is logged and reaches the caller only as INTERNAL.
"""

from __future__ import annotations

from collections.abc import Mapping


class ServiceError(Exception):
    """An error the caller can act on. ``details`` are short string facts."""

    code: str = "UNKNOWN"

    def __init__(self, message: str, **details: str) -> None:
        super().__init__(message)
        self.message = message
        self.details: Mapping[str, str] = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, {dict(self.details)!r})"


class InvalidArgument(ServiceError):
    code = "INVALID_ARGUMENT"

    def __init__(self, message: str, field: str | None = None, **details: str) -> None:
        if field is not None:
            details["field"] = field
        super().__init__(message, **details)


class NotFound(ServiceError):
    code = "NOT_FOUND"


class AlreadyExists(ServiceError):
    code = "ALREADY_EXISTS"


class FailedPrecondition(ServiceError):
    """The request is valid but conflicts with the current state."""

    code = "FAILED_PRECONDITION"


class Aborted(ServiceError):
    """A concurrent change won; the caller may retry."""

    code = "ABORTED"


class PermissionDenied(ServiceError):
    code = "PERMISSION_DENIED"


class Unauthenticated(ServiceError):
    code = "UNAUTHENTICATED"


class ResourceExhausted(ServiceError):
    code = "RESOURCE_EXHAUSTED"


class Unavailable(ServiceError):
    code = "UNAVAILABLE"


class DeadlineExceeded(ServiceError):
    code = "DEADLINE_EXCEEDED"


class Internal(ServiceError):
    code = "INTERNAL"


class PaymentDeclined(FailedPrecondition):
    """A card processor declined the charge (HTTP 402 at the edge)."""

    def __init__(self, message: str, **details: str) -> None:
        details.setdefault("reason", "payment_declined")
        super().__init__(message, **details)


ERRORS_BY_CODE: Mapping[str, type[ServiceError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Aborted,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        Internal,
    )
}
