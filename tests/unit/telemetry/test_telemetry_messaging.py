"""Event spans: the producer joins the recording request, the consumer the producer."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from ec_recommend.platform.telemetry.messaging import handling_message, publishing
from ec_recommend.platform.telemetry.metrics import Metrics
from ec_recommend.platform.telemetry.tracing import trace_headers, tracer
from tests.telemetry_support import named, parent_id, span_id, trace_id

QUEUE = "order-processing-queue"


def record_in_request() -> dict[str, str]:
    """What record_event stores: the trace context of the request that wrote it."""
    with tracer.start_as_current_span("POST /api/v1/orders"):
        return trace_headers()


def test_publish_and_consume_continue_the_request_trace(spans: InMemorySpanExporter) -> None:
    metrics = Metrics()
    stored = record_in_request()

    with publishing("order-events", "order.created", "e-1", stored) as attributes:
        pass
    with handling_message(
        QUEUE,
        consumer="inventory",
        carrier=attributes,
        event_type="order.created",
        event_id="e-1",
        metrics=metrics,
    ):
        pass

    finished = spans.get_finished_spans()
    request = named(finished, "POST /api/v1/orders")
    producer = named(finished, "publish order-events")
    consumer = named(finished, f"process {QUEUE}")
    assert producer.kind is SpanKind.PRODUCER
    assert consumer.kind is SpanKind.CONSUMER
    assert trace_id(producer) == trace_id(consumer) == trace_id(request)
    assert parent_id(producer) == span_id(request)
    assert parent_id(consumer) == span_id(producer)
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.destination.name"] == QUEUE
    assert consumer.attributes["messaging.message.id"] == "e-1"
    assert metrics.queue_message_processed.get({"queue": QUEUE, "status": "success"}) == 1


def test_linked_consumer_starts_its_own_trace(spans: InMemorySpanExporter) -> None:
    with publishing("order-events", "order.paid", "e-2", record_in_request()) as attributes:
        pass
    with handling_message(QUEUE, consumer="inventory", carrier=attributes, links=True):
        pass
    finished = spans.get_finished_spans()
    producer = named(finished, "publish order-events")
    consumer = named(finished, f"process {QUEUE}")
    assert consumer.parent is None
    assert trace_id(consumer) != trace_id(producer)
    assert [link.context.span_id for link in consumer.links] == [span_id(producer)]


def test_failed_handling_is_counted_and_recorded(spans: InMemorySpanExporter) -> None:
    metrics = Metrics()
    with (
        pytest.raises(RuntimeError),
        handling_message(QUEUE, consumer="inventory", carrier={}, metrics=metrics),
    ):
        raise RuntimeError("handler broke")
    with handling_message(QUEUE, consumer="inventory", carrier={}, metrics=metrics) as outcome:
        outcome.status = "duplicate"
    assert metrics.queue_message_processed.get({"queue": QUEUE, "status": "error"}) == 1
    assert metrics.queue_message_processed.get({"queue": QUEUE, "status": "duplicate"}) == 1
    failed, duplicate = spans.get_finished_spans()
    assert failed.status.status_code is StatusCode.ERROR
    assert duplicate.attributes is not None
    assert duplicate.attributes["ec.outcome"] == "duplicate"


def test_an_event_recorded_outside_a_request_publishes_as_a_new_trace(
    spans: InMemorySpanExporter,
) -> None:
    with publishing("user-events", "user.created", "e-3", {}) as attributes:
        pass
    (producer,) = spans.get_finished_spans()
    assert producer.parent is None
    assert attributes["traceparent"].startswith(f"00-{trace_id(producer):032x}-")
