"""Tracing on the OpenTelemetry API: the tracer, context propagation, ids.

Library code depends on ``opentelemetry-api`` only. Until a process entry
point installs an SDK provider (``telemetry.export``), spans are no-ops that
still pass an incoming trace context along, so nothing here needs the SDK.
Trace context travels as W3C ``traceparent``/``tracestate`` in gRPC metadata,
HTTP headers, event metadata and SNS/SQS message attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from contextlib import AbstractContextManager
from contextvars import ContextVar
from types import TracebackType
from typing import Final, Protocol

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
)

TRACER_NAME = "ec_recommend"

# A ProxyTracer: it resolves to whichever provider the entry point installs.
tracer = trace.get_tracer(TRACER_NAME)

TRACE_HEADERS = ("traceparent", "tracestate")

# The service (or consumer) whose code is running: log lines and spans say
# which one when a process hosts several.
current_component: ContextVar[str] = ContextVar("ec_component", default="")


_NO_SDK = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
_sdk_seen = False


def sdk_installed() -> bool:
    """False until an entry point installs an SDK provider: every span is a no-op then."""
    global _sdk_seen
    if _sdk_seen:  # a global provider is set once and never replaced
        return True
    _sdk_seen = not isinstance(trace.get_tracer_provider(), _NO_SDK)
    return _sdk_seen


class IdGenerator(Protocol):
    """What the SDK's id generators offer (``opentelemetry.sdk.trace.id_generator``)."""

    def generate_span_id(self) -> int: ...

    def generate_trace_id(self) -> int: ...

    def is_trace_id_random(self) -> bool: ...


_UNSAMPLED: Final = TraceFlags(TraceFlags.DEFAULT)
_UNSAMPLED_RANDOM: Final = TraceFlags(TraceFlags.DEFAULT | TraceFlags.RANDOM_TRACE_ID)


class Unrecorded:
    """Spans the installed provider surely records nothing of, made without it.

    The SDK builds such a span at some cost per span (sampler call, attribute
    mapping, generator-based context managers); a process without an
    exporter starts two per RPC it makes in process. Given what its sampler
    decides, a span's context is simple to make here: the parent's trace id
    (or a new one), a new span id, the parent's trace state, unsampled flags
    that keep the random-trace-id bit as the SDK sets it. ``export.py``
    installs one for the provider it builds (``spans_unrecorded``); the tests
    compare what it makes with what the SDK makes.
    """

    __slots__ = ("_every", "_random_roots", "_span_id", "_trace_id")

    def __init__(self, ids: IdGenerator, *, every: bool) -> None:
        # every: the sampler drops every span (ALWAYS_OFF); otherwise only the
        # children of an unsampled parent (ParentBased's default for them)
        self._every = every
        self._span_id: Callable[[], int] = ids.generate_span_id
        self._trace_id: Callable[[], int] = ids.generate_trace_id
        self._random_roots = ids.is_trace_id_random()

    def child_of(self, parent: SpanContext) -> NonRecordingSpan | None:
        """The span the provider would start under ``parent``; None: it might record."""
        if parent.is_valid:
            flags = parent.trace_flags
            if flags & TraceFlags.SAMPLED and not self._every:
                return None
            random = flags & TraceFlags.RANDOM_TRACE_ID
            return NonRecordingSpan(
                SpanContext(
                    parent.trace_id,
                    self._span_id(),
                    False,
                    _UNSAMPLED_RANDOM if random else _UNSAMPLED,
                    parent.trace_state,
                )
            )
        if not self._every:
            return None  # a new trace: the root sampler decides
        flags = _UNSAMPLED_RANDOM if self._random_roots else _UNSAMPLED
        return NonRecordingSpan(SpanContext(self._trace_id(), self._span_id(), False, flags))


_unrecorded: Unrecorded | None = None


def spans_unrecorded(unrecorded: Unrecorded | None) -> None:
    """Declare when the installed provider's spans record nothing (None: unknown)."""
    global _unrecorded
    _unrecorded = unrecorded


def unrecorded_child(parent: SpanContext) -> NonRecordingSpan | None:
    """The span a tracer would start under ``parent`` if it surely records
    nothing, made cheaply; None when it might record (start it with ``tracer``)."""
    unrecorded = _unrecorded
    return None if unrecorded is None else unrecorded.child_of(parent)


class InSpan:
    """``with InSpan(span):`` ``span`` is current inside the block, and nothing
    more: ``use_span`` for a span that records nothing (it ends nothing,
    records no exception). A class rather than ``@contextmanager``: it runs
    around every call without a recording span."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span
        self._token: object = None

    def __enter__(self) -> Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]


def continue_trace(parent: Context) -> AbstractContextManager[Span]:
    """Without an SDK: what a no-op span would do, minus its cost.

    The caller's span context becomes current (so outgoing calls pass the
    trace along) and the yielded span ignores names, attributes and status.
    """
    return InSpan(NonRecordingSpan(trace.get_current_span(parent).get_span_context()))


def inject(
    carrier: MutableMapping[str, str], context: Context | None = None
) -> MutableMapping[str, str]:
    """Write the trace context (the current one by default) into ``carrier``."""
    propagate.inject(carrier, context=context)
    return carrier


def trace_headers() -> dict[str, str]:
    """The current trace context as ``traceparent``/``tracestate`` entries."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {key: value for key, value in carrier.items() if key in TRACE_HEADERS}


def extract(carrier: Mapping[str, str | bytes]) -> Context:
    """The trace context a caller sent (an empty context when none or malformed).

    ``carrier`` is looked up by lower-case key: gRPC metadata keys are lower
    case, aiohttp's headers are case-insensitive.
    """
    parent = carrier.get("traceparent")
    if not isinstance(parent, str):
        return Context()
    text = {"traceparent": parent}
    state = carrier.get("tracestate")
    if isinstance(state, str):
        text["tracestate"] = state
    return propagate.extract(text)


def current_ids() -> tuple[str, str] | None:
    """Hex trace id and span id of the current span, if there is one."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def record_failure(span: Span, exc: BaseException, *, is_error: bool = True) -> None:
    """Attach ``exc`` to ``span``; mark the span failed when it is the span's fault."""
    span.record_exception(exc)
    if is_error:
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
