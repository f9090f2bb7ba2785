"""Event telemetry: PRODUCER spans at publish, CONSUMER spans per handled message.

The trace context of the request that caused an event is stored in the event
metadata when the event is recorded (``trace_headers()``), so the relay's
PRODUCER span, published later from a polling loop, still belongs to that
request's trace. The producer's own context travels as SNS/SQS message
attributes; the consumer continues it, as a child by default or as a new
trace linked to it (``links=True``) for fan-outs that should stay separate.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind

from ec_recommend.platform.telemetry.metrics import Metrics, process_metrics
from ec_recommend.platform.telemetry.tracing import (
    current_component,
    extract,
    inject,
    record_failure,
    tracer,
)


@contextmanager
def publishing(
    topic: str, event_type: str, event_id: str, stored: Mapping[str, str]
) -> Iterator[dict[str, str]]:
    """A PRODUCER span for publishing one event; yields the trace headers to send.

    ``stored`` is the event's metadata: its trace context becomes the parent.
    """
    with tracer.start_as_current_span(
        f"publish {topic}",
        context=extract(stored),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "aws_sns",
            "messaging.operation.type": "publish",
            "messaging.destination.name": topic,
            "messaging.message.id": event_id,
            "ec.event_type": event_type,
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        carrier: dict[str, str] = {}
        inject(carrier)
        try:
            yield carrier
        except Exception as exc:
            record_failure(span, exc)
            raise


@dataclass
class MessageOutcome:
    """How handling ended; the ``status`` label of ``queue_message_processed_total``.

    Set ``status`` to one of a few fixed words (``success``, ``duplicate``,
    ``ignored``, ``malformed``, ``error``); an escaping exception makes it
    ``error``.
    """

    span: Span
    status: str = "success"


@contextmanager
def handling_message(
    queue: str,
    *,
    consumer: str,
    carrier: Mapping[str, str],
    event_type: str = "",
    event_id: str = "",
    links: bool = False,
    metrics: Metrics | None = None,
) -> Iterator[MessageOutcome]:
    """A CONSUMER span and an outcome count for one message taken from ``queue``.

    ``carrier`` holds the trace headers that came with the message (message
    attributes, or the envelope's metadata when attributes are missing).
    """
    recorder = metrics or process_metrics()
    parent = extract(carrier)
    context: Context | None = parent
    span_links: list[Link] = []
    if links:
        producer = trace.get_current_span(parent).get_span_context()
        context = Context()  # a new trace, not the poller's ambient one
        if producer.is_valid:
            span_links.append(Link(producer))
    attributes = {
        "messaging.system": "aws_sqs",
        "messaging.operation.type": "process",
        "messaging.destination.name": queue,
        "messaging.consumer.group.name": consumer,
    }
    if event_id:
        attributes["messaging.message.id"] = event_id
    if event_type:
        attributes["ec.event_type"] = event_type
    component = current_component.set(consumer)
    try:
        with tracer.start_as_current_span(
            f"process {queue}",
            context=context,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=span_links,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            outcome = MessageOutcome(span)
            try:
                yield outcome
            except BaseException as exc:
                outcome.status = "error"
                record_failure(span, exc)
                raise
            finally:
                span.set_attribute("ec.outcome", outcome.status)
                recorder.message_processed(queue, outcome.status)
    finally:
        current_component.reset(component)


def record_lag(queue: str, sent_at_epoch: float, metrics: Metrics | None = None) -> None:
    """Note how old a message was when ``queue``'s consumer received it."""
    (metrics or process_metrics()).lag(queue, time.time() - sent_at_epoch)
