"""Typed errors survive the trip through a gRPC status and back."""

from __future__ import annotations

from grpclib.const import Status

from ec_recommend.platform import errors
from ec_recommend.platform.rpc.status import ErrorDetailsCodec, from_grpc_error, to_grpc_error


def test_round_trip_keeps_type_message_and_details() -> None:
    original = errors.FailedPrecondition(
        "only 2 left", product_id="p1", reason="insufficient_stock"
    )
    grpc_error = to_grpc_error(original)
    assert grpc_error.status is Status.FAILED_PRECONDITION
    codec = ErrorDetailsCodec()
    wire = codec.encode(grpc_error.status, grpc_error.message, grpc_error.details)
    grpc_error.details = codec.decode(grpc_error.status, grpc_error.message, wire)
    back = from_grpc_error(grpc_error)
    assert type(back) is errors.FailedPrecondition
    assert back.message == "only 2 left"
    assert dict(back.details) == {"product_id": "p1", "reason": "insufficient_stock"}


def test_payment_declined_is_recognised() -> None:
    grpc_error = to_grpc_error(errors.PaymentDeclined("card declined"))
    assert isinstance(from_grpc_error(grpc_error), errors.PaymentDeclined)


def test_invalid_argument_keeps_its_field() -> None:
    back = from_grpc_error(to_grpc_error(errors.InvalidArgument("bad", field="name")))
    assert isinstance(back, errors.InvalidArgument)
    assert back.details["field"] == "name"


def test_unmapped_status_becomes_internal() -> None:
    from grpclib.exceptions import GRPCError

    assert isinstance(from_grpc_error(GRPCError(Status.DATA_LOSS, "x")), errors.Internal)
