"""gRPC spans: server middleware and client span, without a network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from grpclib.const import Status
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from ec_recommend.platform import errors
from ec_recommend.platform.rpc.server import ServerCall
from ec_recommend.platform.telemetry.metrics import Metrics
from ec_recommend.platform.telemetry.rpc import client_span, server_middleware
from ec_recommend.platform.telemetry.tracing import tracer
from tests.telemetry_support import named, parent_id, span_id, trace_id

pytestmark = pytest.mark.asyncio

METHOD = "/ecommerce.product.ProductService/GetProduct"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@dataclass
class Request:
    product_id: str


class FakeStream:
    def __init__(self, metadata: dict[str, str], request: Any) -> None:
        self.metadata = metadata
        self._request = request

    async def recv_message(self) -> Any:
        return self._request


def call_with(metadata: dict[str, str], request: Any) -> ServerCall:
    return ServerCall("product", METHOD, FakeStream(metadata, request), None)  # type: ignore[arg-type]


async def test_server_span_continues_the_callers_trace(spans: InMemorySpanExporter) -> None:
    metrics = Metrics()
    middleware = server_middleware("product", metrics)
    call = call_with({"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}, Request("p-1"))
    seen: list[Any] = []

    async def handler() -> None:
        seen.append(await call.stream.recv_message())

    # user.id is added by the identity middleware, which verifies the caller
    # (tests/integration/telemetry/test_telemetry_gateway.py)
    await middleware(call, handler)

    assert seen == [Request("p-1")]
    span = named(spans.get_finished_spans(), "ecommerce.product.ProductService/GetProduct")
    assert span.kind is SpanKind.SERVER
    assert format(trace_id(span), "032x") == CALLER_TRACE
    assert parent_id(span) == int(CALLER_SPAN, 16)
    assert span.attributes is not None
    assert dict(span.attributes) == {
        "rpc.system": "grpc",
        "rpc.service": "ecommerce.product.ProductService",
        "rpc.method": "GetProduct",
        "ec.service": "product",
        "product.id": "p-1",
        "rpc.grpc.status_code": 0,
    }
    assert span.status.status_code is StatusCode.UNSET
    histogram = metrics.grpc_request_duration.get(
        {"service": "product", "method": "GetProduct", "status": "OK"}
    )
    assert histogram["count"] == 1


@pytest.mark.parametrize(
    ("error", "status", "span_status"),
    [
        (errors.NotFound("no such product"), Status.NOT_FOUND, StatusCode.UNSET),
        (errors.Unavailable("database down"), Status.UNAVAILABLE, StatusCode.ERROR),
        (RuntimeError("bug"), Status.INTERNAL, StatusCode.ERROR),
    ],
)
async def test_server_span_records_errors(
    spans: InMemorySpanExporter, error: Exception, status: Status, span_status: StatusCode
) -> None:
    metrics = Metrics()
    middleware = server_middleware("product", metrics)

    async def handler() -> None:
        raise error

    with pytest.raises(type(error)):
        await middleware(call_with({}, None), handler)

    span = named(spans.get_finished_spans(), METHOD.lstrip("/"))
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == status.value
    assert span.status.status_code is span_status
    assert [event.name for event in span.events] == ["exception"]
    labels = {"service": "product", "method": "GetProduct", "status": status.name}
    assert metrics.grpc_request_duration.get(labels)["count"] == 1


async def test_a_malformed_traceparent_starts_a_new_trace(spans: InMemorySpanExporter) -> None:
    middleware = server_middleware("product", Metrics())

    async def handler() -> None:
        return None

    await middleware(call_with({"traceparent": "00-zz-yy-01"}, None), handler)
    span = named(spans.get_finished_spans(), METHOD.lstrip("/"))
    assert span.parent is None


async def test_client_span_sends_its_context_in_metadata(spans: InMemorySpanExporter) -> None:
    outgoing = [("x-request-id", "r-1")]
    with (
        tracer.start_as_current_span("caller"),
        client_span("product", METHOD, outgoing) as sent_pairs,
    ):
        pass
    finished = spans.get_finished_spans()
    client = named(finished, METHOD.lstrip("/"))
    caller = named(finished, "caller")
    assert client.kind is SpanKind.CLIENT
    assert parent_id(client) == span_id(caller)
    assert outgoing == [("x-request-id", "r-1")], "the caller's list is left alone for retries"
    sent = dict(sent_pairs)
    assert sent["x-request-id"] == "r-1"
    assert sent["traceparent"].startswith(f"00-{trace_id(client):032x}-{span_id(client):016x}-")


class AttemptFailed(Exception):
    def __init__(self, error: errors.ServiceError) -> None:
        super().__init__(error.message)
        self.error = error


async def test_client_span_marks_failed_attempts(spans: InMemorySpanExporter) -> None:
    with pytest.raises(AttemptFailed), client_span("product", METHOD, []):
        raise AttemptFailed(errors.DeadlineExceeded("product did not answer in time"))
    span = named(spans.get_finished_spans(), METHOD.lstrip("/"))
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == Status.DEADLINE_EXCEEDED.value


async def test_without_an_sdk_no_span_is_built_but_the_trace_goes_along(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ec_recommend.platform.telemetry.rpc as rpc_telemetry

    monkeypatch.setattr(rpc_telemetry, "sdk_installed", lambda: False)
    metrics = Metrics()
    middleware = server_middleware("product", metrics)
    call = call_with({"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}, Request("p-1"))
    outgoing: list[list[tuple[str, Any]]] = []

    async def handler() -> None:
        with client_span("inventory", "/ecommerce.x.Y/Z", [("x-request-id", "r-1")]) as sent:
            outgoing.append(sent)

    await middleware(call, handler)

    assert spans.get_finished_spans() == ()
    sent = dict(outgoing[0])
    assert sent["x-request-id"] == "r-1"
    assert sent["traceparent"] == f"00-{CALLER_TRACE}-{CALLER_SPAN}-01", "the caller's trace"
    assert "GetProduct" in metrics.render()[0].decode(), "the call is still measured"
    with client_span("inventory", "/ecommerce.x.Y/Z", []) as alone:
        assert alone == [], "no trace to pass along outside of one"
