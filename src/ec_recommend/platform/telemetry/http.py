"""HTTP telemetry parts: the server span, route labels and the ``/metrics`` handler.

The gateway's one middleware (``gateway.middleware``) opens a SERVER span per
request (continuing a client's W3C ``traceparent``), counts
``http_request_total``, observes the latency histogram and writes one access
log line to ``ec_recommend.access`` inside the span. The ``endpoint`` label
is the route template (``/api/v1/products/{id}``), never the raw path;
requests no route matched share the label ``unmatched``.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry.trace import INVALID_SPAN, SpanKind

from ec_recommend.platform.telemetry.metrics import Metrics, process_metrics
from ec_recommend.platform.telemetry.tracing import (
    InSpan,
    caller_span,
    continue_trace,
    extract,
    sdk_installed,
    tracer,
)
from ec_recommend.platform.telemetry.unrecorded import unrecorded_child

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
    headers = request.headers
    parent_span, parent = caller_span(headers)
    unrecorded = unrecorded_child(parent_span)
    if unrecorded is not None:
        return InSpan(unrecorded)  # its ids, and no attributes that nothing would keep
    if parent is None:
        parent = extract(headers)  # all of it (baggage too) for the span processors
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


def metrics_handler(metrics: Metrics | None = None) -> Handler:
    """A handler answering with the process's metrics in the Prometheus text format."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body, content_type = (metrics or process_metrics()).render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    return handle
