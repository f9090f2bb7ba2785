"""Log lines carry what leads to their trace and request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ec_recommend.platform.rpc.context import CallContext, call_scope
from ec_recommend.platform.telemetry.logging import (
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    configure_logging,
)
from ec_recommend.platform.telemetry.tracing import current_component, tracer
from tests.telemetry_support import span_id, trace_id


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter("ec-recommend"))
    logger = logging.getLogger("tests.telemetry.logging")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield logger, out, handler
    logger.removeHandler(handler)


def test_json_lines_carry_trace_span_request_and_service(
    capture: tuple[logging.Logger, io.StringIO, logging.Handler], spans: InMemorySpanExporter
) -> None:
    logger, out, handler = capture
    handler.setFormatter(JsonFormatter())
    token = current_component.set("order")
    try:
        with (
            call_scope(CallContext(request_id="req-7")),
            tracer.start_as_current_span("work"),
        ):
            logger.info("reserved %d items", 3, extra={"order_id": "o-1"})
    finally:
        current_component.reset(token)
    logger.warning("outside")

    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    (span,) = spans.get_finished_spans()
    assert inside["message"] == "reserved 3 items"
    assert inside["level"] == "INFO"
    assert inside["service"] == "order"
    assert inside["trace_id"] == f"{trace_id(span):032x}"
    assert inside["span_id"] == f"{span_id(span):016x}"
    assert inside["request_id"] == "req-7"
    assert inside["order_id"] == "o-1"
    assert inside["timestamp"].endswith("+00:00")
    assert outside["trace_id"] == "" and outside["request_id"] == ""
    assert outside["service"] == "ec-recommend"


def test_json_lines_include_the_exception(
    capture: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, out, handler = capture
    handler.setFormatter(JsonFormatter())
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    (line,) = out.getvalue().splitlines()
    record = json.loads(line)
    assert "ValueError: boom" in record["exception"]


def test_text_lines_are_readable_and_tagged(
    capture: tuple[logging.Logger, io.StringIO, logging.Handler], spans: InMemorySpanExporter
) -> None:
    logger, out, handler = capture
    handler.setFormatter(TextFormatter())
    with call_scope(CallContext(request_id="req-8")), tracer.start_as_current_span("work"):
        logger.info("hello")
    (span,) = spans.get_finished_spans()
    line = out.getvalue().rstrip("\n")
    assert " INFO  ec-recommend tests.telemetry.logging: hello" in line
    assert line.endswith(f"trace={trace_id(span):032x} req=req-8")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "formatter"), [(io.StringIO, JsonFormatter), (Terminal, TextFormatter)]
)
def test_auto_format_is_text_on_a_terminal_and_json_elsewhere(
    stream: type[io.StringIO], formatter: type[logging.Formatter]
) -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    try:
        handler = configure_logging("WARNING", log_format="auto", stream=stream())
        assert isinstance(handler.formatter, formatter)
        assert root.handlers == [handler] and root.level == logging.WARNING
    finally:
        for installed in list(root.handlers):
            root.removeHandler(installed)
        for previous in saved:
            root.addHandler(previous)
        root.setLevel(level)
