"""Event telemetry: PRODUCER spans at publish, CONSUMER spans per handled message.

The trace context of the request that caused an event is stored in the event
metadata when the event is recorded (``trace_headers()``), so the relay's
PRODUCER span, published later from a polling loop, still belongs to that
request's trace. The producer's own context travels as SNS/SQS message
attributes; the consumer continues it, as a child by default or as a new
trace linked to it (``links=True``) for fan-outs that should stay separate.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    Link,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
)

from ec_recommend.platform.telemetry.metrics import Metrics, process_metrics
from ec_recommend.platform.telemetry.tracing import (
    caller_span,
    current_component,
    extract,
    inject,
    record_failure,
    tracer,
)
from ec_recommend.platform.telemetry.unrecorded import unrecorded_child
from ec_recommend.platform.telemetry.w3c import inject_span

# The request id of the request that caused an event (an event metadata key).
CORRELATION_ID = "correlation_id"


class Publication:
    """The PRODUCER span of one event being published.

    Not made current: a batch publishes many events at once, each under the
    request that recorded it. ``headers`` is the span's trace context, to send
    as message attributes.
    """

    def __init__(
        self, topic: str, event_type: str, event_id: str, stored: Mapping[str, str]
    ) -> None:
        self.headers: dict[str, str] = {}
        parent_span, parent = caller_span(stored)
        unrecorded = unrecorded_child(parent_span)
        if unrecorded is not None:
            # its ids, sent on as the SDK's span's would be; nothing would keep its attributes
            self.span: Span = unrecorded
            context = trace.set_span_in_context(unrecorded)
            inject_span(self.headers, unrecorded.get_span_context(), context)
            return
        self.span = tracer.start_span(
            f"publish {topic}",
            context=extract(stored) if parent is None else parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "aws_sns",
                "messaging.operation.type": "publish",
                "messaging.destination.name": topic,
                "messaging.message.id": event_id,
                "ec.event_type": event_type,
            },
        )
        correlation = stored.get(CORRELATION_ID)
        if correlation:
            self.span.set_attribute("messaging.message.conversation_id", correlation)
        inject(self.headers, trace.set_span_in_context(self.span))

    def message_attributes(self) -> dict[str, dict[str, str]]:
        return {
            key: {"DataType": "String", "StringValue": value} for key, value in self.headers.items()
        }

    def finish(self, failure: BaseException | str | None = None) -> None:
        if isinstance(failure, BaseException):
            record_failure(self.span, failure)
        elif failure:
            self.span.set_status(Status(StatusCode.ERROR, failure))
        self.span.end()


@contextmanager
def publishing(
    topic: str, event_type: str, event_id: str, stored: Mapping[str, str]
) -> Iterator[dict[str, str]]:
    """A PRODUCER span for publishing one event; yields the trace headers to send.

    ``stored`` is the event's metadata: its trace context becomes the parent.
    """
    publication = Publication(topic, event_type, event_id, stored)
    try:
        yield publication.headers
    except BaseException as exc:
        publication.finish(exc)
        raise
    publication.finish()


class BatchPublication:
    """PRODUCER spans for a batch of encoded events, keyed like the batch entries."""

    def __init__(self, topic: str, bodies: Mapping[str, str]) -> None:
        self.publications = {
            key: Publication(topic, *_envelope_fields(body)) for key, body in bodies.items()
        }
        self._failed: dict[str, str] = {}

    def attributes(self, key: str) -> dict[str, dict[str, str]]:
        """Message attributes carrying the producer span of entry ``key``."""
        return self.publications[key].message_attributes()

    def failed(self, key: str, reason: str) -> None:
        self._failed[key] = reason


@contextmanager
def publishing_batch(topic_arn: str, bodies: Mapping[str, str]) -> Iterator[BatchPublication]:
    """PRODUCER spans for one batch publish to ``topic_arn`` (entry key → envelope JSON)."""
    batch = BatchPublication(topic_arn.rsplit(":", 1)[-1], bodies)
    try:
        yield batch
    except BaseException as exc:
        for publication in batch.publications.values():
            publication.finish(exc)
        raise
    for key, publication in batch.publications.items():
        publication.finish(batch._failed.get(key))


def _envelope_fields(body: str) -> tuple[str, str, Mapping[str, str]]:
    """Type, id and metadata of an encoded event (empty when unreadable)."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return "", "", {}
    if not isinstance(envelope, dict):
        return "", "", {}
    metadata = envelope.get("metadata")
    return (
        str(envelope.get("type", "")),
        str(envelope.get("id", "")),
        {str(k): v for k, v in metadata.items() if isinstance(v, str)}
        if isinstance(metadata, dict)
        else {},
    )


# One line per handled message at DEBUG, inside its span.
access_log = logging.getLogger("ec_recommend.access.queue")


@dataclass
class MessageOutcome:
    """How handling ended; the ``status`` label of ``queue_message_processed_total``.

    Set ``status`` to one of a few fixed words (``success``, ``duplicate``,
    ``ignored``, ``malformed``, ``error``); an escaping exception makes it
    ``error``.
    """

    span: Span
    status: str = "success"


class OutcomeCounter(Protocol):
    """Where a handled message's outcome is counted (``Metrics``, ``BatchOutcomes``)."""

    def message_processed(self, queue: str, status: str) -> None: ...


class BatchOutcomes:
    """The outcomes of one received batch, counted as they come and added to
    ``queue_message_processed_total`` once (``flush``): one label lookup per
    status a batch, not one per message."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._metrics = metrics or process_metrics()
        self._counts: Counter[tuple[str, str]] = Counter()

    def message_processed(self, queue: str, status: str) -> None:
        self._counts[queue, status] += 1

    def flush(self) -> None:
        for (queue, status), count in self._counts.items():
            self._metrics.message_processed(queue, status, count)
        self._counts.clear()


class MessageHandling:
    """The CONSUMER span and outcome count of one message handled in phases.

    A batch applies its messages in one transaction and runs their side
    effects later: each phase runs inside ``active()``, and ``finish`` ends
    the span and counts the outcome once the message's fate is known.
    ``carrier`` holds the trace headers that came with the message (message
    attributes, or the envelope's metadata when attributes are missing).
    """

    def __init__(
        self,
        queue: str,
        *,
        consumer: str,
        carrier: Mapping[str, str],
        event_type: str = "",
        event_id: str = "",
        links: bool | None = None,
        metrics: OutcomeCounter | None = None,
    ) -> None:
        self.queue = queue
        self.consumer = consumer
        self.event_type = event_type
        self.event_id = event_id
        self._recorder: OutcomeCounter = metrics or process_metrics()
        self.started = time.perf_counter()
        parent_span, parent = caller_span(carrier)
        linked = _consumer_links if links is None else links
        # linked: a new trace, not the poller's ambient one
        unrecorded = unrecorded_child(INVALID_SPAN_CONTEXT if linked else parent_span)
        if unrecorded is not None:
            self.span: Span = unrecorded  # its ids; nothing would keep attributes or links
        else:
            if parent is None:
                parent = extract(carrier)  # all of it (baggage too) for the span processors
            self.span = self._start_span(carrier, parent, parent_span, linked)
        self.finished = False

    def _start_span(
        self, carrier: Mapping[str, str], parent: Context, producer: SpanContext, linked: bool
    ) -> Span:
        context: Context | None = parent
        span_links: list[Link] = []
        if linked:
            context = Context()  # a new trace, not the poller's ambient one
            if producer.is_valid:
                span_links.append(Link(producer))
        attributes = {
            "messaging.system": "aws_sqs",
            "messaging.operation.type": "process",
            "messaging.destination.name": self.queue,
            "messaging.consumer.group.name": self.consumer,
        }
        if self.event_id:
            attributes["messaging.message.id"] = self.event_id
        correlation = carrier.get(CORRELATION_ID)
        if correlation:
            attributes["messaging.message.conversation_id"] = correlation
        if self.event_type:
            attributes["ec.event_type"] = self.event_type
        return tracer.start_span(
            f"process {self.queue}",
            context=context,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=span_links,
            record_exception=False,
            set_status_on_exception=False,
        )

    def active(self) -> AbstractContextManager[Span]:
        """Make the span current (and the consumer the component) for one phase."""
        return _Active(self.span, self.consumer)

    def finish(self, status: str, failure: BaseException | None = None) -> None:
        """End the span with ``status`` (``error`` records ``failure``); once."""
        if self.finished:
            return
        self.finished = True
        if failure is not None:
            record_failure(self.span, failure)
        self.span.set_attribute("ec.outcome", status)
        self._recorder.message_processed(self.queue, status)
        if access_log.isEnabledFor(logging.DEBUG):
            with self.active():  # the line carries the message's trace and consumer
                access_log.debug(
                    "%s %s %s %s %.1fms",
                    self.queue,
                    self.event_type or "?",
                    self.event_id or "?",
                    status,
                    (time.perf_counter() - self.started) * 1000,
                )
        self.span.end()


@contextmanager
def handling_message(
    queue: str,
    *,
    consumer: str,
    carrier: Mapping[str, str],
    event_type: str = "",
    event_id: str = "",
    links: bool | None = None,
    metrics: Metrics | None = None,
) -> Iterator[MessageOutcome]:
    """A CONSUMER span and an outcome count for one message taken from ``queue``.

    ``carrier`` holds the trace headers that came with the message (message
    attributes, or the envelope's metadata when attributes are missing).
    """
    handling = MessageHandling(
        queue,
        consumer=consumer,
        carrier=carrier,
        event_type=event_type,
        event_id=event_id,
        links=links,
        metrics=metrics,
    )
    outcome = MessageOutcome(handling.span)
    failure: BaseException | None = None
    try:
        with handling.active():
            yield outcome
    except BaseException as exc:
        outcome.status = "error"
        failure = exc
        raise
    finally:
        handling.finish(outcome.status, failure)


class _Active:
    """``trace.use_span(span, end_on_exit=False, record_exception=False,
    set_status_on_exception=False)`` with the consumer as the component: a
    class, not two generator-based context managers (a phase of every message)."""

    __slots__ = ("_component", "_consumer", "_span", "_token")

    def __init__(self, span: Span, consumer: str) -> None:
        self._span = span
        self._consumer = consumer
        self._token: object = None
        self._component: object = None

    def __enter__(self) -> Span:
        self._component = current_component.set(self._consumer)
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]
        current_component.reset(self._component)  # type: ignore[arg-type]


def record_lag(queue: str, sent_at_epoch: float, metrics: Metrics | None = None) -> None:
    """Note how old a message was when ``queue``'s consumer received it."""
    (metrics or process_metrics()).lag(queue, time.time() - sent_at_epoch)


_consumer_links = False


def use_consumer_links(enabled: bool) -> None:
    """Process-wide choice (entry point): consumer spans link to, or continue, the producer."""
    global _consumer_links
    _consumer_links = enabled
