"""HTTP telemetry: an aiohttp middleware for the gateway and the ``/metrics`` handler.

The middleware opens a SERVER span per request (continuing a client's W3C
``traceparent``), counts ``http_request_total`` and observes the latency
histogram, and tracks requests in flight. The ``endpoint`` label is the
route template (``/api/v1/products/{id}``), never the raw path; requests no
route matched share the label ``unmatched``. One access log line per
request goes to ``ec_recommend.access``, inside the span, so it carries the
trace id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry.trace import INVALID_SPAN, SpanKind, Status, StatusCode

from ec_recommend.platform.telemetry.metrics import Metrics, process_metrics
from ec_recommend.platform.telemetry.tracing import (
    continue_trace,
    current_component,
    extract,
    record_failure,
    sdk_installed,
    tracer,
)

access_log = logging.getLogger("ec_recommend.access")

REQUEST_ID_HEADER: Final = "X-Request-ID"

# A handler that routes by its own table may name the template it matched.
ROUTE_TEMPLATE: Final = web.RequestKey("ec_route_template", str)

UNMATCHED: Final = "unmatched"
KNOWN_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
CLIENT_CLOSED: Final = 499  # nginx's code for a client that went away; only ever a label


def route_template(request: web.Request) -> str:
    """The bounded name of what ``request`` asked for."""
    named = request.get(ROUTE_TEMPLATE)
    if isinstance(named, str) and named:
        return named
    resource = request.match_info.route.resource
    return str(resource.canonical) if resource is not None else UNMATCHED


def server_span(request: web.Request, method: str) -> Any:
    if not sdk_installed():
        if "traceparent" not in request.headers:
            # No SDK and no trace to continue: a no-op span, nothing to make current.
            return nullcontext(INVALID_SPAN)
        return continue_trace(extract(request.headers))  # no span to describe: no attributes
    parent = extract(request.headers)
    return tracer.start_as_current_span(
        method,
        context=parent,
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": method,
            "url.path": request.path,
            "url.scheme": request.scheme,
            "user_agent.original": request.headers.get("User-Agent", ""),
            "client.address": request.remote or "",
        },
        record_exception=False,
        set_status_on_exception=False,
    )


def http_middleware(service: str = "gateway", metrics: Metrics | None = None) -> Middleware:
    """Spans and metrics for every request; install it as the outermost middleware."""
    recorder = metrics or process_metrics()

    @web.middleware
    async def telemetry(request: web.Request, handler: Handler) -> web.StreamResponse:
        method = request.method if request.method in KNOWN_METHODS else "_OTHER"
        started = time.perf_counter()
        status = 500
        headers: Mapping[str, str] = {}
        recorder.http_started(service)
        component = current_component.set(service)
        try:
            with server_span(request, method) as span:
                try:
                    response = await handler(request)
                    status, headers = response.status, response.headers
                    return response
                except web.HTTPException as exc:
                    status, headers = exc.status, exc.headers
                    raise
                except asyncio.CancelledError:
                    status = CLIENT_CLOSED
                    raise
                except Exception as exc:
                    record_failure(span, exc)
                    raise
                finally:
                    endpoint = route_template(request)
                    elapsed = time.perf_counter() - started
                    span.update_name(f"{method} {endpoint}")
                    span.set_attribute("http.route", endpoint)
                    span.set_attribute("http.response.status_code", status)
                    request_id = headers.get(REQUEST_ID_HEADER, "")
                    if request_id:
                        span.set_attribute("ec.request_id", request_id)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                    access_log.info(
                        "%s %s %d %.1fms",
                        method,
                        request.path,
                        status,
                        elapsed * 1000,
                        extra={
                            "http_status": status,
                            "http_route": endpoint,
                            "request_id": request_id,
                        },
                    )
        finally:
            current_component.reset(component)
            recorder.http_finished(service)
            recorder.observe_http(
                service, route_template(request), method, status, time.perf_counter() - started
            )

    return telemetry


def metrics_handler(metrics: Metrics | None = None) -> Handler:
    """A handler answering with the process's metrics in the Prometheus text format."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body, content_type = (metrics or process_metrics()).render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    return handle
