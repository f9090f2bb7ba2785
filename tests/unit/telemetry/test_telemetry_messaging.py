"""Event spans: the producer joins the recording request, the consumer the producer."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from ec_recommend.platform.telemetry.messaging import (
    handle_traced,
    handling_message,
    publishing,
    publishing_batch,
)
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


def envelope(event_id: str, metadata: dict[str, str]) -> str:
    return json.dumps({"id": event_id, "type": "order.created", "metadata": metadata})


def test_a_batch_publishes_each_event_under_its_own_request(spans: InMemorySpanExporter) -> None:
    first, second = record_in_request(), record_in_request()
    arn = "arn:aws:sns:ap-northeast-1:123456789012:order-events"
    bodies = {"1": envelope("e-1", first), "2": envelope("e-2", second), "3": "not json"}
    with publishing_batch(arn, bodies) as batch:
        sent = {key: batch.attributes(key)["traceparent"]["StringValue"] for key in bodies}
        batch.failed("2", "InternalError")

    finished = spans.get_finished_spans()
    requests = [span for span in finished if span.name == "POST /api/v1/orders"]
    producers = {
        str(span.attributes["messaging.message.id"]): span
        for span in finished
        if span.kind is SpanKind.PRODUCER and span.attributes is not None
    }
    assert set(producers) == {"e-1", "e-2", ""}
    for request, event_id in zip(requests, ("e-1", "e-2"), strict=True):
        producer = producers[event_id]
        assert parent_id(producer) == span_id(request)
        assert producer.name == "publish order-events"
    assert producers[""].parent is None, "an unreadable body still publishes, as a new trace"
    assert producers["e-2"].status.status_code is StatusCode.ERROR
    assert producers["e-1"].status.status_code is StatusCode.UNSET
    assert sent["1"].startswith(
        f"00-{trace_id(producers['e-1']):032x}-{span_id(producers['e-1']):016x}"
    )


def sqs_message(attributes: dict[str, str], body: str = "{}") -> dict[str, Any]:
    return {
        "MessageId": "m-1",
        "Body": body,
        "Attributes": {"SentTimestamp": str(int((time.time() - 5) * 1000))},
        "MessageAttributes": {
            key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()
        },
    }


@pytest.mark.asyncio
async def test_handled_messages_continue_the_trace_and_count_outcomes(
    spans: InMemorySpanExporter,
) -> None:
    metrics = Metrics()
    with publishing("order-events", "order.created", "e-1", record_in_request()) as headers:
        pass
    seen: list[str] = []

    async def handle(message: dict[str, Any]) -> str:
        seen.append(format(trace.get_current_span().get_span_context().trace_id, "032x"))
        return "duplicates"

    message = sqs_message({**headers, "type": "order.created"})
    await handle_traced(handle, message, queue=QUEUE, consumer="inventory", metrics=metrics)
    # Without attributes (no raw delivery), the envelope's stored context is used.
    stored = record_in_request()
    await handle_traced(
        handle,
        sqs_message({}, envelope("e-9", stored)),
        queue=QUEUE,
        consumer="inventory",
        metrics=metrics,
    )

    finished = spans.get_finished_spans()
    producer = named(finished, "publish order-events")
    consumers = [span for span in finished if span.kind is SpanKind.CONSUMER]
    assert parent_id(consumers[0]) == span_id(producer)
    assert seen[0] == f"{trace_id(producer):032x}"
    assert consumers[0].attributes is not None
    assert consumers[0].attributes["ec.event_type"] == "order.created"
    assert seen[1] == stored["traceparent"].split("-")[1]
    assert metrics.queue_message_processed.get({"queue": QUEUE, "status": "duplicate"}) == 2
    assert 4 <= metrics.consumer_lag.get({"queue": QUEUE}) < 60


@pytest.mark.asyncio
async def test_an_unknown_outcome_counts_as_an_error(spans: InMemorySpanExporter) -> None:
    metrics = Metrics()

    async def handle(message: dict[str, Any]) -> str:
        return "something new"

    await handle_traced(handle, sqs_message({}), queue=QUEUE, consumer="c", metrics=metrics)
    assert metrics.queue_message_processed.get({"queue": QUEUE, "status": "error"}) == 1
