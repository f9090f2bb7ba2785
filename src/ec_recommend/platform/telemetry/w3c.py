"""The W3C trace context of one RPC, read and written without the propagator chain.

Under the default propagators (``tracecontext,baggage``) a call's trace
context is its ``traceparent`` (and ``tracestate``, and ``baggage`` when
there is any). The composite propagator gets there through a context, a
getter and setter per header, a regular expression and a baggage lookup: a
few microseconds a call, twice per RPC (sent, then received). For the
common case these do the same directly: a span without trace state and no
baggage on the way out, a plain ``traceparent`` on the way in. Anything
else, or another propagator configured (``OTEL_PROPAGATORS``), goes
through ``opentelemetry.propagate`` as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

from opentelemetry import baggage, propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# What our own clients send (version 00, nothing around it), which the
# trace-context propagator reads as a remote span context; anything else it
# decides about itself.
_PLAIN_TRACEPARENT: Final = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE: Final = "0" * 32
_ZERO_SPAN: Final = "0" * 16
_DEFAULT_KINDS: Final = [TraceContextTextMapPropagator, W3CBaggagePropagator]

_checked: TextMapPropagator | None = None
_default = False


def default_propagators() -> bool:
    """True while the global propagator is the default ``tracecontext,baggage``."""
    global _checked, _default
    textmap = propagate.get_global_textmap()
    if textmap is not _checked:  # set once at import, replaced only by set_global_textmap
        kinds = [type(p) for p in getattr(textmap, "_propagators", ())]
        _default = type(textmap) is CompositePropagator and kinds == _DEFAULT_KINDS
        _checked = textmap
    return _default


def inject_span(
    carrier: MutableMapping[str, str], span_context: SpanContext, context: Context
) -> None:
    """``propagate.inject(carrier, context)`` where ``span_context`` is ``context``'s span."""
    if (
        default_propagators()
        and span_context.is_valid
        and not span_context.trace_state
        and not baggage.get_all(context)
    ):
        trace_id, span_id, _, flags, _, _ = span_context
        carrier["traceparent"] = f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"
        return
    propagate.inject(carrier, context=context)


def remote_parent(carrier: Mapping[str, Any]) -> SpanContext | None:
    """The span context the caller sent in ``carrier``, as ``tracing.extract``
    reads it, when that is quick to tell; None: ask ``extract``."""
    if not default_propagators():
        return None
    header = carrier.get("traceparent")
    if not isinstance(header, str):
        return INVALID_SPAN_CONTEXT  # nothing to continue (``extract`` ignores bytes)
    if isinstance(carrier.get("tracestate"), str):
        return None  # trace state to parse
    match = _PLAIN_TRACEPARENT.fullmatch(header)
    if match is None:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return INVALID_SPAN_CONTEXT
    return SpanContext(int(trace_id, 16), int(span_id, 16), True, TraceFlags(int(flags, 16)))
