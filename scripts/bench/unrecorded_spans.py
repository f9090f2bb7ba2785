"""CPU per span off the RPC path under the tracer provider ``up`` installs
without an exporter (spans carry ids, record nothing): the gateway's server
span, a consumed message's span (two phases and its end), a published
event's span and headers, an event's stored trace headers.

Run it against two worktrees alternately (PYTHONPATH=<worktree>/src).

    .venv/bin/python scripts/bench/unrecorded_spans.py [--rounds 5] [--seconds 0.4]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import make_mocked_request
from cpu_timing import cpu_per_call
from opentelemetry import context as otel_context
from opentelemetry import trace

from ec_recommend.config import TelemetryConfig
from ec_recommend.platform.telemetry.export import tracing
from ec_recommend.platform.telemetry.http import server_span
from ec_recommend.platform.telemetry.messaging import MessageHandling, publishing
from ec_recommend.platform.telemetry.metrics import Metrics
from ec_recommend.platform.telemetry.tracing import trace_headers, tracer

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
METRICS = Metrics()


def gateway_request(request: Any) -> None:
    with server_span(request, "GET") as span:
        span.set_attribute("http.route", "/api/v1/products/{id}")


def consumed_message() -> None:
    handling = MessageHandling(
        "order-processing-queue",
        consumer="inventory",
        carrier={"traceparent": TRACEPARENT, "correlation_id": "r-1"},
        event_type="order.created",
        event_id="e-1",
        metrics=METRICS,
    )
    with handling.active():
        pass
    with handling.active():
        pass
    handling.finish("success")


def published_event() -> None:
    stored = {"traceparent": TRACEPARENT, "correlation_id": "r-1"}
    with publishing("order-events", "order.created", "e-1", stored):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4)
    args = parser.parse_args()
    with tracing(TelemetryConfig(), "bench"):
        fresh = make_mocked_request("GET", "/api/v1/products/p-1")
        continued = make_mocked_request(
            "GET", "/api/v1/products/p-1", headers={"traceparent": TRACEPARENT}
        )
        # an event recorded inside a request's span (ids only, as under up)
        token = otel_context.attach(trace.set_span_in_context(tracer.start_span("request")))
        cases: dict[str, Callable[[], Any]] = {
            "gateway span, new trace": lambda: gateway_request(fresh),
            "gateway span, traceparent": lambda: gateway_request(continued),
            "consumed message": consumed_message,
            "published event": published_event,
            "trace_headers()": trace_headers,
        }
        for name, call in cases.items():
            best = min(cpu_per_call(call, args.seconds) for _ in range(args.rounds))
            print(f"{name:28} {best:7.2f} µs")
        otel_context.detach(token)


if __name__ == "__main__":
    main()
