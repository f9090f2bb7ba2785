"""What a server reads of a call's metadata into its CallContext."""

from __future__ import annotations

from grpclib.metadata import Deadline
from multidict import MultiDict

from ec_recommend.platform.rpc.context import CallContext, Identity


def test_reads_request_id_and_idempotency_key_from_pairs_or_a_mapping() -> None:
    pairs = [("x-request-id", "r-1"), ("idempotency-key", "k-1"), ("other", "x")]
    deadline = Deadline.from_timeout(5)
    for metadata in (pairs, MultiDict(pairs), dict(pairs)):
        context = CallContext.from_metadata(metadata, deadline)
        assert (context.request_id, context.idempotency_key) == ("r-1", "k-1")
        assert context.deadline is deadline
        assert context.identity is None


def test_ignores_binary_values_and_the_last_text_value_wins() -> None:
    pairs: list[tuple[str, str | bytes]] = [
        ("x-request-id", "first"),
        ("x-request-id", b"bin"),
        ("x-request-id", "last"),
    ]
    assert CallContext.from_metadata(pairs).request_id == "last"
    assert CallContext.from_metadata([("idempotency-key", b"k")]).idempotency_key == ""
    assert CallContext.from_metadata(()) == CallContext()


def test_with_identity_keeps_everything_else() -> None:
    context = CallContext(
        request_id="r", idempotency_key="k", deadline=Deadline.from_timeout(1), extra={"a": "b"}
    )
    user = Identity("u-1", roles=frozenset({"admin"}))
    assert context.with_identity(user) == CallContext(
        user, context.request_id, context.idempotency_key, context.deadline, context.extra
    )
