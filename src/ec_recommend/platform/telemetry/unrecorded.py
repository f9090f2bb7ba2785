"""Spans the installed provider surely records nothing of, made without it.

Without an exporter (``ec-recommend up``'s default) the provider's sampler
drops every span; with one, ParentBased drops the children of an unsampled
parent. Such a span still has ids (log lines carry them, calls pass them
on), but the SDK builds it at some cost (sampler call, attribute mapping,
two generator-based context managers), and a process starts two per RPC it
makes in process. ``export.py`` says which spans of the provider it installs
record nothing (``spans_unrecorded``); hot paths ask ``unrecorded_child``
first and start a span with the tracer only when it says None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags


class IdGenerator(Protocol):
    """What the SDK's id generators offer (``opentelemetry.sdk.trace.id_generator``)."""

    def generate_span_id(self) -> int: ...

    def generate_trace_id(self) -> int: ...

    def is_trace_id_random(self) -> bool: ...


_SAMPLED: Final = TraceFlags.SAMPLED
_RANDOM: Final = TraceFlags.RANDOM_TRACE_ID
_UNSAMPLED: Final = TraceFlags(TraceFlags.DEFAULT)
_UNSAMPLED_RANDOM: Final = TraceFlags(TraceFlags.DEFAULT | TraceFlags.RANDOM_TRACE_ID)


class Unrecorded:
    """The contexts of the spans a provider drops, made as its SDK tracer makes them.

    The parent's trace id (or a new one), a new span id, the parent's trace
    state, unsampled flags that keep the random-trace-id bit as the SDK sets
    it (the tests compare them with the SDK's).
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
        # one unpacking of the tuple, not five property calls
        trace_id, _, _, flags, trace_state, valid = parent
        if valid:
            if flags & _SAMPLED and not self._every:
                return None
            return NonRecordingSpan(
                SpanContext(
                    trace_id,
                    self._span_id(),
                    False,
                    _UNSAMPLED_RANDOM if flags & _RANDOM else _UNSAMPLED,
                    trace_state,
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
