"""The direct W3C trace context reads and writes what the propagators do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ec_recommend.platform.telemetry.tracing import extract
from ec_recommend.platform.telemetry.w3c import default_propagators, inject_span, remote_parent

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"

CARRIERS: dict[str, dict[str, Any]] = {
    "none": {},
    "sampled": {"traceparent": f"00-{TRACE}-{SPAN}-01"},
    "unsampled random": {"traceparent": f"00-{TRACE}-{SPAN}-02"},
    "with other metadata": {"traceparent": f"00-{TRACE}-{SPAN}-00", "x-request-id": "r"},
    "with trace state": {"traceparent": f"00-{TRACE}-{SPAN}-01", "tracestate": "v=1,w=2"},
    "with baggage": {"traceparent": f"00-{TRACE}-{SPAN}-01", "baggage": "k=v"},
    "upper case": {"traceparent": f"00-{TRACE.upper()}-{SPAN}-01"},
    "spaces around": {"traceparent": f" 00-{TRACE}-{SPAN}-01\t"},
    "version 00 with more": {"traceparent": f"00-{TRACE}-{SPAN}-01-extra"},
    "a later version with more": {"traceparent": f"01-{TRACE}-{SPAN}-01-extra"},
    "version ff": {"traceparent": f"ff-{TRACE}-{SPAN}-01"},
    "zero trace id": {"traceparent": f"00-{'0' * 32}-{SPAN}-01"},
    "zero span id": {"traceparent": f"00-{TRACE}-{'0' * 16}-01"},
    "short": {"traceparent": f"00-{TRACE[:-1]}-{SPAN}-01"},
    "bytes": {"traceparent": f"00-{TRACE}-{SPAN}-01".encode()},
    "garbage": {"traceparent": "yes"},
}


def fields(context: SpanContext) -> tuple[Any, ...]:
    return (*context, type(context.trace_flags), dict(context.trace_state))


@pytest.mark.parametrize("carrier", CARRIERS.values(), ids=CARRIERS.keys())
def test_the_callers_span_context_is_what_extract_reads(carrier: dict[str, Any]) -> None:
    assert default_propagators()
    read = remote_parent(carrier)
    expected = trace.get_current_span(extract(carrier)).get_span_context()
    if read is not None:
        assert fields(read) == fields(expected)


def test_a_plain_traceparent_is_read_directly() -> None:
    # (the cases the direct read takes: the others may go to extract)
    for name in ("none", "sampled", "unsampled random", "with other metadata", "zero span id"):
        assert remote_parent(CARRIERS[name]) is not None, name


SPANS = {
    "sampled": SpanContext(int(TRACE, 16), int(SPAN, 16), False, TraceFlags(1)),
    "unsampled random": SpanContext(int(TRACE, 16), 5, False, TraceFlags(2)),
    "with trace state": SpanContext(
        int(TRACE, 16), 5, False, TraceFlags(1), TraceState([("v", "1")])
    ),
    "invalid": trace.INVALID_SPAN_CONTEXT,
}


@pytest.mark.parametrize("span_context", SPANS.values(), ids=SPANS.keys())
@pytest.mark.parametrize("with_baggage", [False, True])
def test_what_is_sent_is_what_inject_writes(span_context: SpanContext, with_baggage: bool) -> None:
    context = Context()
    if with_baggage:
        context = baggage.set_baggage("tenant", "t-1", context)
    context = trace.set_span_in_context(NonRecordingSpan(span_context), context)
    expected: dict[str, str] = {}
    propagate.inject(expected, context=context)
    sent: dict[str, str] = {}
    inject_span(sent, span_context, context)
    assert sent == expected


@pytest.fixture
def trace_context_only() -> Iterator[None]:
    default = propagate.get_global_textmap()
    propagate.set_global_textmap(CompositePropagator([TraceContextTextMapPropagator()]))
    yield
    propagate.set_global_textmap(default)


@pytest.mark.usefixtures("trace_context_only")
def test_other_propagators_are_left_to_do_their_work() -> None:
    assert not default_propagators()
    assert remote_parent(CARRIERS["sampled"]) is None
    context = baggage.set_baggage("tenant", "t-1")
    context = trace.set_span_in_context(NonRecordingSpan(SPANS["sampled"]), context)
    sent: dict[str, str] = {}
    inject_span(sent, SPANS["sampled"], context)
    assert sent == {"traceparent": f"00-{TRACE}-{SPAN}-01"}, "no baggage: not configured"
