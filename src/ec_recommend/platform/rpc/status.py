"""Typed errors <-> gRPC statuses, with details that survive the hop.

Details travel in ``grpc-status-details-bin`` as a standard ``google.rpc.Status``
carrying one ``google.rpc.ErrorInfo`` whose metadata holds the error's details,
so any gRPC client can read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grpclib.const import Status
from grpclib.encoding.base import StatusDetailsCodecBase
from grpclib.exceptions import GRPCError

from ec_recommend._gen.google import protobuf as pb_protobuf
from ec_recommend._gen.google import rpc as pb_rpc
from ec_recommend.platform import errors

DETAILS_KEY = "grpc-status-details-bin"  # the trailing metadata key of the details
_ERROR_INFO_URL = "type.googleapis.com/google.rpc.ErrorInfo"
_DOMAIN = "ec-recommend"

STATUS_BY_CODE: Mapping[str, Status] = {
    "INVALID_ARGUMENT": Status.INVALID_ARGUMENT,
    "NOT_FOUND": Status.NOT_FOUND,
    "ALREADY_EXISTS": Status.ALREADY_EXISTS,
    "FAILED_PRECONDITION": Status.FAILED_PRECONDITION,
    "ABORTED": Status.ABORTED,
    "PERMISSION_DENIED": Status.PERMISSION_DENIED,
    "UNAUTHENTICATED": Status.UNAUTHENTICATED,
    "RESOURCE_EXHAUSTED": Status.RESOURCE_EXHAUSTED,
    "UNAVAILABLE": Status.UNAVAILABLE,
    "DEADLINE_EXCEEDED": Status.DEADLINE_EXCEEDED,
    "INTERNAL": Status.INTERNAL,
}


class ErrorDetailsCodec(StatusDetailsCodecBase):
    """Encodes a ``{str: str}`` mapping as google.rpc.Status + ErrorInfo."""

    def encode(self, status: Status, message: str | None, details: Any) -> bytes:
        info = pb_rpc.ErrorInfo(
            reason=str(details.get("reason", "")),
            domain=_DOMAIN,
            metadata={str(k): str(v) for k, v in dict(details).items()},
        )
        any_info = pb_protobuf.Any(type_url=_ERROR_INFO_URL, value=bytes(info))
        return bytes(pb_rpc.Status(code=status.value, message=message or "", details=[any_info]))

    def decode(self, status: Status, message: str | None, data: bytes) -> Any:
        decoded = pb_rpc.Status.parse(data)
        result: dict[str, str] = {}
        for item in decoded.details:
            if item.type_url == _ERROR_INFO_URL:
                result.update(pb_rpc.ErrorInfo.parse(item.value).metadata)
        return result


def to_grpc_error(error: errors.ServiceError) -> GRPCError:
    status = STATUS_BY_CODE.get(error.code, Status.UNKNOWN)
    return GRPCError(status, error.message, dict(error.details) or None)


def from_grpc_error(error: GRPCError) -> errors.ServiceError:
    """The typed error a caller sees for a failed call."""
    details = error.details if isinstance(error.details, dict) else {}
    message = error.message or error.status.name.replace("_", " ").lower()
    cls: type[errors.ServiceError] = errors.ERRORS_BY_CODE.get(error.status.name, errors.Internal)
    if cls is errors.FailedPrecondition and details.get("reason") == "payment_declined":
        cls = errors.PaymentDeclined
    return cls(message, **details)
