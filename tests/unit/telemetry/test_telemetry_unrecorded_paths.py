"""Spans that record nothing, without the SDK, off the RPC path: the gateway's
server span, the consumer's span per message, the relay's producer span and
the trace headers an event keeps. Each is made twice, by an ALWAYS_OFF SDK
tracer and by ``Unrecorded``, both counting their ids, and compared: the same
ids current inside (log lines carry them), the same headers sent on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from ec_recommend.platform.telemetry import http as http_telemetry
from ec_recommend.platform.telemetry import messaging, unrecorded
from ec_recommend.platform.telemetry.metrics import Metrics
from ec_recommend.platform.telemetry.tracing import current_ids, trace_headers
from ec_recommend.platform.telemetry.unrecorded import Unrecorded

from .test_telemetry_unrecorded import CALLER_SPAN, CALLER_TRACE, CountingIds

QUEUE = "order-processing-queue"

CARRIERS: dict[str, dict[str, str]] = {
    "none": {},
    "unsampled": {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"},
    "unsampled random": {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-02"},
    "sampled": {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
    "with state": {
        "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-00",
        "tracestate": "vendor=v1,other=2",
    },
    "upper case (the propagator's business)": {
        "traceparent": f"00-{CALLER_TRACE.upper()}-{CALLER_SPAN}-00"
    },
    "malformed": {"traceparent": "00-zz-00f067aa0ba902b7-00"},
    "zero trace": {"traceparent": f"00-{'0' * 32}-{CALLER_SPAN}-00"},
}
_MODULES = (http_telemetry, messaging)


@pytest.fixture
def sdk_always_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    provider = TracerProvider(sampler=ALWAYS_OFF, id_generator=CountingIds())
    for module in _MODULES:
        monkeypatch.setattr(module, "tracer", provider.get_tracer("t"))
    monkeypatch.setattr(unrecorded, "_unrecorded", None)
    yield
    provider.shutdown()


@pytest.fixture
def shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Unrecorded`` makes the spans; the SDK's tracer must not be asked."""
    monkeypatch.setattr(unrecorded, "_unrecorded", Unrecorded(CountingIds(), every=True))
    for module in _MODULES:
        monkeypatch.setattr(module, "tracer", None)


def both_ways(request: pytest.FixtureRequest, run: Any) -> tuple[Any, Any]:
    request.getfixturevalue("sdk_always_off")
    with_sdk = run()
    request.getfixturevalue("shortcut")
    return with_sdk, run()


@pytest.mark.parametrize("carrier", CARRIERS.values(), ids=CARRIERS.keys())
def test_the_gateways_server_span_has_the_sdks_ids(
    request: pytest.FixtureRequest, spans: InMemorySpanExporter, carrier: dict[str, str]
) -> None:
    def run() -> tuple[Any, ...]:
        http_request = make_mocked_request("GET", "/api/v1/products", headers=carrier)
        with http_telemetry.server_span(http_request, "GET") as span:
            inside = current_ids()
            span.update_name("GET /api/v1/products")
            span.set_attribute("http.response.status_code", 200)
            recording = span.is_recording()
        return inside, recording, current_ids()

    with_sdk, without = both_ways(request, run)
    assert without == with_sdk
    inside, recording, after = without
    assert inside is not None and not recording and after is None
    if carrier.get("traceparent", "").startswith(f"00-{CALLER_TRACE}-"):
        assert inside[0] == CALLER_TRACE, "the client's trace continues"
    assert spans.get_finished_spans() == ()


@dataclass
class Handled:
    inside: tuple[str, str] | None
    in_phase_two: tuple[str, str] | None
    component: str
    after: tuple[str, str] | None
    counted: float


@pytest.mark.parametrize("carrier", CARRIERS.values(), ids=CARRIERS.keys())
@pytest.mark.parametrize("links", [False, True])
@pytest.mark.parametrize("fail", [False, True])
def test_a_consumed_messages_span_has_the_sdks_ids(
    request: pytest.FixtureRequest,
    spans: InMemorySpanExporter,
    carrier: dict[str, str],
    links: bool,
    fail: bool,
) -> None:
    def run() -> Handled:
        metrics = Metrics()
        handling = messaging.MessageHandling(
            QUEUE,
            consumer="inventory",
            carrier={**carrier, "correlation_id": "r-1"},
            event_type="order.created",
            event_id="e-1",
            links=links,
            metrics=metrics,
        )
        with handling.active():
            inside = current_ids()
        failure = None
        try:
            with handling.active() as span:  # a second phase, as a batch runs them
                in_phase_two = current_ids()
                component = messaging.current_component.get()
                if fail:
                    raise RuntimeError("handler failed")
        except RuntimeError as exc:
            failure = exc
        assert span is handling.span
        handling.finish("error" if fail else "success", failure)
        status = "error" if fail else "success"
        counted = metrics.queue_message_processed.get({"queue": QUEUE, "status": status})
        return Handled(inside, in_phase_two, component, current_ids(), counted)

    with_sdk, without = both_ways(request, run)
    assert without == with_sdk
    assert without.inside is not None and without.inside == without.in_phase_two
    assert without.component == "inventory" and without.after is None
    assert without.counted == 1
    if not links and carrier.get("traceparent", "").startswith(f"00-{CALLER_TRACE}-"):
        assert without.inside[0] == CALLER_TRACE, "the producer's trace continues"
    if links:
        assert without.inside[0] != CALLER_TRACE, "a trace of its own"
    assert spans.get_finished_spans() == ()


@pytest.mark.parametrize("carrier", CARRIERS.values(), ids=CARRIERS.keys())
def test_a_published_events_span_sends_the_sdks_headers(
    request: pytest.FixtureRequest, spans: InMemorySpanExporter, carrier: dict[str, str]
) -> None:
    def run() -> tuple[dict[str, str], dict[str, str]]:
        stored = {**carrier, "correlation_id": "r-1"}
        with messaging.publishing("order-events", "order.created", "e-1", stored) as headers:
            pass
        batch_body = json.dumps({"type": "order.created", "id": "e-2", "metadata": stored})
        with messaging.publishing_batch("arn:aws:sns:x:1:order-events", {"0": batch_body}) as b:
            batch_headers = b.publications["0"].headers
        return headers, batch_headers

    with_sdk, without = both_ways(request, run)
    assert without == with_sdk
    assert all("traceparent" in headers for headers in without)
    assert spans.get_finished_spans() == ()


def test_a_published_events_headers_carry_the_current_baggage(
    request: pytest.FixtureRequest, spans: InMemorySpanExporter
) -> None:
    def run() -> dict[str, str]:
        token = otel_context.attach(baggage.set_baggage("tenant", "t1"))
        try:
            stored = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"}
            with messaging.publishing("order-events", "order.created", "e-1", stored) as headers:
                return headers
        finally:
            otel_context.detach(token)

    with_sdk, without = both_ways(request, run)
    assert without == with_sdk and without["baggage"] == "tenant=t1"


CURRENT = {
    "no span": trace.INVALID_SPAN_CONTEXT,
    "unsampled": SpanContext(int(CALLER_TRACE, 16), int(CALLER_SPAN, 16), False, TraceFlags(0)),
    "sampled random": SpanContext(int(CALLER_TRACE, 16), 7, True, TraceFlags(3)),
    "with state": SpanContext(
        int(CALLER_TRACE, 16), 7, False, TraceFlags(1), TraceState([("vendor", "v1")])
    ),
}


@pytest.mark.parametrize("current", CURRENT.values(), ids=CURRENT.keys())
@pytest.mark.parametrize("with_baggage", [False, True])
def test_an_events_trace_headers_are_the_propagators(
    current: SpanContext, with_baggage: bool
) -> None:
    context = trace.set_span_in_context(NonRecordingSpan(current))
    if with_baggage:
        context = baggage.set_baggage("tenant", "t1", context)
    token = otel_context.attach(context)
    try:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        expected = {k: v for k, v in carrier.items() if k in ("traceparent", "tracestate")}
        assert trace_headers() == expected
    finally:
        otel_context.detach(token)
