"""The pieces of an in-process call: stream, metadata and error details as on the wire."""

from __future__ import annotations

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.platform.rpc.codec import FastProtoCodec
from ec_recommend.platform.rpc.local import LocalStream, wire_error, wire_metadata

pytestmark = pytest.mark.asyncio


def stream(request: bytes) -> LocalStream:
    metadata = wire_metadata([("x-request-id", "r1")])
    return LocalStream(
        FastProtoCodec(), request, pb.GetProductRequest, pb.Product, metadata, deadline=None
    )


async def test_the_request_is_decoded_once_and_the_reply_encoded() -> None:
    local = stream(bytes(pb.GetProductRequest(product_id="p1")))
    assert await local.recv_message() == pb.GetProductRequest(product_id="p1")
    assert await local.recv_message() is None  # a unary stream has one message
    await local.send_message(pb.Product(id="p1", name="mug"))
    assert local.reply == bytes(pb.Product(id="p1", name="mug"))


async def test_a_unary_call_answers_once() -> None:
    local = stream(b"")
    await local.send_message(pb.Product(id="p1"))
    with pytest.raises(GRPCError) as caught:
        await local.send_message(pb.Product(id="p2"))
    assert caught.value.status is Status.INTERNAL


async def test_a_reply_of_the_wrong_type_fails_as_the_codec_does() -> None:
    with pytest.raises(TypeError):
        await stream(b"").send_message(pb.GetProductRequest())


async def test_metadata_arrives_as_grpclib_decodes_it() -> None:
    received = wire_metadata([("x-user-id", "u1"), ("trace-bin", b"\x00\x01"), ("x-user-id", "u2")])
    assert received.getall("x-user-id") == ["u1", "u2"]
    assert received["trace-bin"] == b"\x00\x01"


async def test_metadata_a_socket_would_refuse_is_refused() -> None:
    with pytest.raises(ValueError):
        wire_metadata([("x-user-email", "名前@example.com")])  # not printable ASCII
    with pytest.raises(ValueError):
        wire_metadata([("Upper-Case", "v")])


async def test_error_details_arrive_as_strings_through_the_details_codec() -> None:
    error = wire_error(GRPCError(Status.NOT_FOUND, "gone", {"product_id": "p1", "n": 3}))
    assert (error.status, error.message) == (Status.NOT_FOUND, "gone")
    assert error.details == {"product_id": "p1", "n": "3"}
    plain = GRPCError(Status.INTERNAL, "internal error")
    assert wire_error(plain) is plain


VALUES: list[str | bytes] = [
    "v",
    "a b~!",
    "",
    "名前",
    "tab\there",
    "line\n",
    " ",
    b"\x00",
    "x" * 300,
]


@pytest.mark.parametrize("value", VALUES)
async def test_a_key_seen_before_still_has_its_values_checked_as_grpclib_does(
    value: str | bytes,
) -> None:
    from grpclib.metadata import decode_metadata, encode_metadata

    wire_metadata([("x-seen-key", "ok"), ("x-seen-bin", b"ok")])  # both keys known now
    for pairs in ([("x-seen-key", value)], [("x-seen-bin", value)], [("x-new-key", value)]):
        try:
            expected: object = decode_metadata(encode_metadata(pairs))
        except (ValueError, TypeError) as exc:
            expected = (type(exc), str(exc))
        try:
            received: object = wire_metadata(pairs)
        except (ValueError, TypeError) as exc:
            received = (type(exc), str(exc))
        assert received == expected, pairs
