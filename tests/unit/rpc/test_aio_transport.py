"""The grpcio transport's translations: addresses, and failed calls to GRPCError."""

from __future__ import annotations

import grpc
from grpclib.const import Status

from ec_recommend.platform.rpc.aio_channel import grpc_error
from ec_recommend.platform.rpc.aio_server import target
from ec_recommend.platform.rpc.status import DETAILS_KEY, ErrorDetailsCodec


def test_addresses_are_written_as_grpc_parses_them() -> None:
    assert target("127.0.0.1", 50051) == "127.0.0.1:50051"
    assert target("::1", 50051) == "[::1]:50051"
    assert target("[::1]", 50051) == "[::1]:50051"


def test_a_failed_call_keeps_its_status_message_and_details() -> None:
    details = {"reason": "out_of_stock", "product_id": "p1"}
    data = ErrorDetailsCodec().encode(Status.FAILED_PRECONDITION, "no stock", details)
    failed = grpc.aio.AioRpcError(
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.aio.Metadata(),
        grpc.aio.Metadata((DETAILS_KEY, data)),
        "no stock",
    )
    error = grpc_error(failed)
    assert (error.status, error.message, error.details) == (
        Status.FAILED_PRECONDITION,
        "no stock",
        details,
    )


def test_a_failure_without_details_has_none() -> None:
    failed = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "refused"
    )
    error = grpc_error(failed)
    assert (error.status, error.message, error.details) == (Status.UNAVAILABLE, "refused", None)


def test_a_call_the_server_cancelled_is_unavailable_as_a_dropped_connection() -> None:
    # A stopping grpc.aio server cancels the calls it has not handed to a
    # handler yet; grpclib sees the same as a reset stream (UNAVAILABLE).
    # Our own cancellations never arrive here: they raise CancelledError.
    failed = grpc.aio.AioRpcError(
        grpc.StatusCode.CANCELLED, grpc.aio.Metadata(), grpc.aio.Metadata(), "CANCELLED"
    )
    error = grpc_error(failed)
    assert error.status is Status.UNAVAILABLE
    assert error.message == "the server cancelled the call: CANCELLED"
