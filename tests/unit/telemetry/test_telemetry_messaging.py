"""Event spans: the producer joins the recording request, the consumer the producer."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from ec_recommend.platform.telemetry.messaging import (
    BatchOutcomes,
    MessageHandling,
    handling_message,
    publishing,
    publishing_batch,
    use_consumer_links,
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


class CountingMetrics(Metrics):
    """Metrics that also note each call counting outcomes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, int]] = []

    def message_processed(self, queue: str, status: str, count: int = 1) -> None:
        self.calls.append((queue, status, count))
        super().message_processed(queue, status, count)


def test_a_batch_counts_its_outcomes_once_a_status(spans: InMemorySpanExporter) -> None:
    metrics = CountingMetrics()
    outcomes = BatchOutcomes(metrics)
    for i, status in enumerate(["success"] * 7 + ["duplicate"] * 2 + ["error"]):
        handling = MessageHandling(
            QUEUE, consumer="inventory", carrier={}, event_id=f"e-{i}", metrics=outcomes
        )
        handling.finish(status)
    assert metrics.calls == []  # nothing counted until the batch is done
    outcomes.flush()
    assert sorted(metrics.calls) == [
        (QUEUE, "duplicate", 2),
        (QUEUE, "error", 1),
        (QUEUE, "success", 7),
    ]
    assert metrics.queue_message_processed.get({"queue": QUEUE, "status": "success"}) == 7
    outcomes.flush()  # counted once: a second flush adds nothing
    assert metrics.queue_message_processed.get({"queue": QUEUE, "status": "success"}) == 7
    assert len(spans.get_finished_spans()) == 10  # each message keeps its own span


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


def test_the_process_wide_choice_makes_consumers_link(spans: InMemorySpanExporter) -> None:
    with publishing("order-events", "order.paid", "e-5", record_in_request()) as attributes:
        pass
    use_consumer_links(True)
    try:
        with handling_message(QUEUE, consumer="inventory", carrier=attributes):
            pass
    finally:
        use_consumer_links(False)
    consumer = named(spans.get_finished_spans(), f"process {QUEUE}")
    assert consumer.parent is None and len(consumer.links) == 1
