"""Tracing on the OpenTelemetry API: the tracer, context propagation, ids.

Library code depends on ``opentelemetry-api`` only. Until a process entry
point installs an SDK provider (``telemetry.export``), spans are no-ops that
still pass an incoming trace context along, so nothing here needs the SDK.
Trace context travels as W3C ``traceparent``/``tracestate`` in gRPC metadata,
HTTP headers, event metadata and SNS/SQS message attributes. On the RPC, HTTP
and message paths, spans the provider surely records nothing of are made
without it (``unrecorded.py``) and a plain trace context is read and written
directly (``w3c.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager
from contextvars import ContextVar
from types import TracebackType

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, Status, StatusCode

from ec_recommend.platform.telemetry.w3c import inject_span, remote_parent

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
    # a plain traceparent written directly when that is all the propagators would write
    inject_span(carrier, trace.get_current_span().get_span_context(), otel_context.get_current())
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


def caller_span(carrier: Mapping[str, str | bytes]) -> tuple[SpanContext, Context | None]:
    """The span context a caller sent, and its whole extracted context when
    reading it took ``extract`` (None: the quick read sufficed; ``extract``
    gives the rest, baggage too, if a span is to be recorded)."""
    parent_span = remote_parent(carrier)
    if parent_span is not None:
        return parent_span, None
    parent = extract(carrier)
    return trace.get_current_span(parent).get_span_context(), parent


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
