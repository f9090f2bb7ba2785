"""Spans that record nothing, made without the SDK: the same ids the SDK makes.

A process without an exporter (ALWAYS_OFF), or a child of an unsampled
parent under ParentBased, gets its span contexts from ``tracing.Unrecorded``
instead of the SDK's tracer. These tests make the same spans both ways with
a counting id generator and compare them, through the RPC client span and
server middleware as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from ec_recommend.config import TelemetryConfig
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.server import ServerCall
from ec_recommend.platform.telemetry import export, unrecorded
from ec_recommend.platform.telemetry import rpc as rpc_telemetry
from ec_recommend.platform.telemetry.metrics import Metrics
from ec_recommend.platform.telemetry.tracing import current_ids, extract
from ec_recommend.platform.telemetry.unrecorded import Unrecorded

METHOD = "/ecommerce.product.ProductService/GetProduct"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class CountingIds(IdGenerator):
    """Ids in sequence, so two runs of the same spans make the same ids."""

    def __init__(self, random: bool = True) -> None:
        self._next = 0
        self._random = random

    def generate_span_id(self) -> int:
        self._next += 1
        return self._next

    def generate_trace_id(self) -> int:
        self._next += 1
        return 0xABC00000000000000000000000000000 + self._next

    def is_trace_id_random(self) -> bool:
        return self._random


def sdk_child(sampler: Sampler, ids: IdGenerator, parent: SpanContext) -> Any:
    provider = TracerProvider(sampler=sampler, id_generator=ids, shutdown_on_exit=False)
    context = trace.set_span_in_context(NonRecordingSpan(parent))
    return provider.get_tracer("t").start_span("x", context=context)


def fields(context: SpanContext) -> tuple[Any, ...]:
    return (
        context.trace_id,
        context.span_id,
        context.is_remote,
        context.trace_flags,
        context.trace_state,
        context.is_valid,
    )


PARENTS = {
    "none": trace.INVALID_SPAN_CONTEXT,
    "remote unsampled": SpanContext(
        int(CALLER_TRACE, 16), int(CALLER_SPAN, 16), True, TraceFlags(0)
    ),
    "remote sampled with state": SpanContext(
        int(CALLER_TRACE, 16), 7, True, TraceFlags(1), TraceState([("vendor", "v1")])
    ),
    "local unsampled random": SpanContext(
        int(CALLER_TRACE, 16), 9, False, TraceFlags(2), TraceState([("a", "b")])
    ),
    "local sampled random": SpanContext(int(CALLER_TRACE, 16), 9, False, TraceFlags(3)),
}


@pytest.mark.parametrize("parent", PARENTS.values(), ids=PARENTS.keys())
@pytest.mark.parametrize("random_ids", [True, False])
def test_without_recording_the_ids_are_the_sdks(parent: SpanContext, random_ids: bool) -> None:
    expected = sdk_child(ALWAYS_OFF, CountingIds(random_ids), parent)
    made = Unrecorded(CountingIds(random_ids), every=True).child_of(parent)
    assert made is not None
    assert not expected.is_recording() and not made.is_recording()
    assert fields(made.get_span_context()) == fields(expected.get_span_context())


@pytest.mark.parametrize("parent", PARENTS.values(), ids=PARENTS.keys())
def test_under_parent_based_sampling_only_unsampled_parents_are_skipped(
    parent: SpanContext,
) -> None:
    sampler = ParentBased(TraceIdRatioBased(0.5))
    expected = sdk_child(sampler, CountingIds(), parent)
    made = Unrecorded(CountingIds(), every=False).child_of(parent)
    if parent.is_valid and not parent.trace_flags.sampled:
        assert made is not None and not expected.is_recording()
        assert fields(made.get_span_context()) == fields(expected.get_span_context())
    else:
        assert made is None, "the sampler decides (it may record)"


def test_the_entry_point_says_which_spans_record_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def made_for(config: TelemetryConfig) -> Unrecorded | None:
        provider = export.build_provider(config, "product")
        try:
            return export.unrecorded_spans(config, provider)
        finally:
            provider.shutdown()

    without_endpoint = made_for(TelemetryConfig())
    assert without_endpoint is not None
    assert without_endpoint.child_of(PARENTS["local sampled random"]) is not None
    assert without_endpoint.child_of(trace.INVALID_SPAN_CONTEXT) is not None
    with_endpoint = made_for(TelemetryConfig(otlp_endpoint="http://127.0.0.1:9"))
    assert with_endpoint is not None
    assert with_endpoint.child_of(PARENTS["remote unsampled"]) is not None
    assert with_endpoint.child_of(PARENTS["local sampled random"]) is None
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    assert made_for(TelemetryConfig()) is None, "the SDK counts the spans it starts"
    monkeypatch.delenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert made_for(TelemetryConfig()) is None, "a disabled SDK makes no ids at all"


# -- through the RPC client span and server middleware -------------------------------


@dataclass
class Request:
    product_id: str


class FakeStream:
    def __init__(self, metadata: dict[str, str]) -> None:
        self.metadata = metadata

    async def recv_message(self) -> Any:
        return Request("p-1")


@dataclass
class Hop:
    """What one client attempt sent and what the server's handler saw as current."""

    sent: dict[str, str]
    client_ids: tuple[str, str] | None
    server_ids: tuple[str, str] | None
    after: tuple[str, str] | None


async def hop(caller: SpanContext, *, fail: bool = False) -> Hop:
    """A client attempt under ``caller`` to a server middleware, in the current mode."""
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(caller)))
    try:
        middleware = rpc_telemetry.server_middleware("product", Metrics())
        seen: dict[str, Any] = {}

        async def handler() -> None:
            seen["server"] = current_ids()
            if fail:
                raise errors.Unavailable("database down")

        failing = pytest.raises(errors.Unavailable) if fail else nullcontext()
        with failing, rpc_telemetry.client_span("product", METHOD, [("x-request-id", "r")]) as sent:
            seen["client"] = current_ids()
            metadata = dict(sent)
            call = ServerCall("product", METHOD, FakeStream(metadata), None)  # type: ignore[arg-type]
            await middleware(call, handler)
        return Hop(metadata, seen["client"], seen["server"], current_ids())
    finally:
        otel_context.detach(token)


@pytest.fixture
def sdk_always_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The RPC spans started by an ALWAYS_OFF SDK tracer counting its ids."""
    provider = TracerProvider(sampler=ALWAYS_OFF, id_generator=CountingIds())
    monkeypatch.setattr(rpc_telemetry, "tracer", provider.get_tracer("t"))
    monkeypatch.setattr(unrecorded, "_unrecorded", None)
    yield
    provider.shutdown()


@pytest.fixture
def shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    """The RPC spans made by ``Unrecorded`` counting its ids (the SDK must not be asked)."""
    monkeypatch.setattr(unrecorded, "_unrecorded", Unrecorded(CountingIds(), every=True))
    monkeypatch.setattr(rpc_telemetry, "tracer", None)


CALLERS = {
    "a trace to continue": PARENTS["remote unsampled"],
    "a sampled caller": PARENTS["remote sampled with state"],
    "no trace": trace.INVALID_SPAN_CONTEXT,
}


@pytest.mark.asyncio
@pytest.mark.parametrize("caller", CALLERS.values(), ids=CALLERS.keys())
@pytest.mark.parametrize("fail", [False, True])
async def test_a_hop_sends_and_sees_the_same_ids_as_with_the_sdk(
    request: pytest.FixtureRequest,
    spans: InMemorySpanExporter,
    caller: SpanContext,
    fail: bool,
) -> None:
    request.getfixturevalue("sdk_always_off")
    with_sdk = await hop(caller, fail=fail)
    request.getfixturevalue("shortcut")
    without = await hop(caller, fail=fail)

    assert without == with_sdk
    assert spans.get_finished_spans() == ()
    assert without.client_ids is not None and without.server_ids is not None
    client_trace, client_span_id = without.client_ids
    assert without.sent["traceparent"].startswith(f"00-{client_trace}-{client_span_id}-")
    assert without.sent["x-request-id"] == "r"
    assert without.server_ids[0] == client_trace, "the server continues the client's trace"
    assert without.server_ids[1] != client_span_id, "in a span of its own"
    if caller.is_valid:
        assert client_trace == format(caller.trace_id, "032x"), "the caller's trace"
    assert without.after == (
        (format(caller.trace_id, "032x"), format(caller.span_id, "016x"))
        if caller.is_valid
        else None
    ), "the caller's span is current again"
    parent = trace.get_current_span(extract(without.sent)).get_span_context()
    assert parent.span_id == int(client_span_id, 16)


@pytest.mark.asyncio
async def test_a_sampled_parent_under_parent_based_sampling_is_still_recorded(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the session's provider records everything; the shortcut only takes unsampled parents
    monkeypatch.setattr(unrecorded, "_unrecorded", Unrecorded(CountingIds(), every=False))
    sampled = await hop(PARENTS["remote sampled with state"])
    names = sorted(span.name for span in spans.get_finished_spans())
    assert names == [METHOD.lstrip("/")] * 2, "the client and the server span"
    assert sampled.sent["traceparent"].endswith("-01")
    spans.clear()
    unsampled = await hop(PARENTS["remote unsampled"])
    assert spans.get_finished_spans() == ()
    assert unsampled.sent["traceparent"].startswith(f"00-{CALLER_TRACE}-")
    assert unsampled.sent["traceparent"].endswith("-00")
