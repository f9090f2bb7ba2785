"""gRPC telemetry: a server middleware and a client call span.

The server side continues the caller's trace from the ``traceparent``
metadata, names the span after the full method (``ecommerce.product.
ProductService/GetProduct``) with the RPC semantic-convention attributes and
the seed's ``user.id``/``product.id``, and observes
``grpc_request_duration_seconds``. The client side wraps each attempt in a
CLIENT span and sends its context in the attempt's metadata.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from grpclib.const import Status
from grpclib.exceptions import GRPCError
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, Span, SpanKind

from ec_recommend.platform import errors
from ec_recommend.platform.rpc.context import current_call
from ec_recommend.platform.rpc.status import STATUS_BY_CODE
from ec_recommend.platform.telemetry.metrics import Metrics, process_metrics
from ec_recommend.platform.telemetry.tracing import (
    InSpan,
    caller_span,
    continue_trace,
    current_component,
    extract,
    inject,
    record_failure,
    sdk_installed,
    tracer,
)
from ec_recommend.platform.telemetry.unrecorded import unrecorded_child
from ec_recommend.platform.telemetry.w3c import inject_span, remote_parent

if TYPE_CHECKING:
    from ec_recommend.platform.rpc.server import Handler, ServerCall, ServerMiddleware

# One line per call at DEBUG (the gateway logs requests at INFO).
access_log = logging.getLogger("ec_recommend.access.grpc")

# Request fields that identify what a call is about, and their span attribute.
REQUEST_ATTRIBUTES: Final[Mapping[str, str]] = {
    "product_id": "product.id",
    "order_id": "order.id",
    "seller_id": "seller.id",
    "reservation_id": "reservation.id",
    "user_id": "user.id",
}

# Statuses that are the server's fault (semantic conventions for gRPC spans);
# the others are the caller's and leave a server span unset.
SERVER_FAULTS: Final = frozenset(
    {
        Status.UNKNOWN,
        Status.DEADLINE_EXCEEDED,
        Status.UNIMPLEMENTED,
        Status.INTERNAL,
        Status.UNAVAILABLE,
        Status.DATA_LOSS,
    }
)


# a Status's name and number without the enum's descriptors (twice a call)
_STATUS_NAME: Final = {status: status.name for status in Status}
_STATUS_CODE: Final = {status: status.value for status in Status}


def split_method(path: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` → (``pkg.Service``, ``Method``)."""
    service, _, method = path.lstrip("/").rpartition("/")
    return service, method


def status_of(exc: BaseException) -> Status:
    """The gRPC status a call ends with when ``exc`` escapes it."""
    # The client wraps a failed attempt's typed error in an ``error`` attribute.
    wrapped = getattr(exc, "error", None)
    if isinstance(wrapped, errors.ServiceError):
        exc = wrapped
    if isinstance(exc, errors.ServiceError):
        return STATUS_BY_CODE.get(exc.code, Status.UNKNOWN)
    if isinstance(exc, GRPCError):
        return exc.status
    if isinstance(exc, asyncio.CancelledError):
        return Status.CANCELLED
    return Status.INTERNAL


def annotate_request(span: Span, message: Any) -> None:
    """Copy the identifying fields of a request message onto ``span``."""
    for field, attribute in REQUEST_ATTRIBUTES.items():
        value = getattr(message, field, None)
        if isinstance(value, str) and value:
            span.set_attribute(attribute, value)


# reusable: nullcontext keeps nothing per block
_NO_SPAN: Final = nullcontext(INVALID_SPAN)


def server_middleware(service: str, metrics: Metrics | None = None) -> ServerMiddleware:
    """A SERVER span and a duration observation per call to ``service``."""
    recorder = metrics or process_metrics()

    def server_span(call: ServerCall, route: _ServerRoute) -> Any:
        metadata: Any = call.stream.metadata or {}
        if not sdk_installed():
            if "traceparent" not in metadata:
                # No SDK and no trace to continue: a no-op span, nothing to make current.
                return _NO_SPAN
            parent_span = remote_parent(metadata)
            if parent_span is not None:
                return InSpan(NonRecordingSpan(parent_span))  # continue_trace, read sooner
            return continue_trace(extract(metadata))  # no span to describe: no attributes
        parent_span, parent = caller_span(metadata)
        unrecorded = unrecorded_child(parent_span)
        if unrecorded is not None:
            return InSpan(unrecorded)  # its ids, and no attributes that nothing would keep
        if parent is None:
            parent = extract(metadata)  # all of it (baggage too) for the span processors
        attributes = dict(route.attributes)
        # user.id is added by the identity middleware, once the caller is verified
        call_context = current_call()
        if call_context.request_id:
            attributes["ec.request_id"] = call_context.request_id
        return tracer.start_as_current_span(
            route.name,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )

    routes: dict[str, _ServerRoute] = {}  # what a route's spans and metrics say, once per route

    async def middleware(call: ServerCall, call_next: Handler) -> None:
        route = routes.get(call.method)
        if route is None:
            route = routes[call.method] = _ServerRoute(service, call.method)
        rpc_method = route.rpc_method
        started = time.perf_counter()
        status = Status.OK
        component = current_component.set(service)
        try:
            with server_span(call, route) as span:
                if span.is_recording():
                    _capture_request(call, span)
                try:
                    await call_next()
                except BaseException as exc:
                    status = status_of(exc)
                    record_failure(span, exc, is_error=status in SERVER_FAULTS)
                    raise
                finally:
                    span.set_attribute("rpc.grpc.status_code", _STATUS_CODE[status])
                    if access_log.isEnabledFor(logging.DEBUG):
                        elapsed = time.perf_counter() - started
                        access_log.debug("%s %s %.1fms", call.method, status.name, elapsed * 1000)
        finally:
            current_component.reset(component)
            seconds = time.perf_counter() - started
            recorder.observe_grpc(service, rpc_method, _STATUS_NAME[status], seconds)

    return middleware


class _ServerRoute:
    """What a SERVER span and the metrics of one route say, made once per route."""

    __slots__ = ("attributes", "name", "rpc_method")

    def __init__(self, service: str, route: str) -> None:
        rpc_service, self.rpc_method = split_method(route)
        self.name = route.lstrip("/")
        self.attributes: Mapping[str, str] = {
            "rpc.system": "grpc",
            "rpc.service": rpc_service,
            "rpc.method": self.rpc_method,
            "ec.service": service,
        }


def _capture_request(call: ServerCall, span: Span) -> None:
    # The handler reads the request itself; wrap the stream to see it go by.
    receive = call.stream.recv_message

    async def recv_message() -> Any:
        message = await receive()
        if message is not None:
            annotate_request(span, message)
        return message

    setattr(call.stream, "recv_message", recv_message)  # noqa: B010 - an instance override


def client_span(
    service: str, route: str, metadata: Sequence[tuple[str, Any]]
) -> AbstractContextManager[list[tuple[str, Any]]]:
    """A CLIENT span around one attempt to call ``service``.

    Yields ``metadata`` plus the span's trace context, to send with the attempt.
    """
    if not sdk_installed():
        return _Untraced(metadata)
    unrecorded = unrecorded_child(trace.get_current_span().get_span_context())
    if unrecorded is not None:
        return _UnrecordedAttempt(metadata, unrecorded)
    return _ClientSpan(service, route, metadata)


class _Untraced:
    """An attempt without an SDK: no span of its own, but a trace the caller
    continues still goes along. A class, not ``@contextmanager``: it runs on
    every attempt, where a generator-based one costs about three times as much."""

    __slots__ = ("_metadata",)

    def __init__(self, metadata: Sequence[tuple[str, Any]]) -> None:
        self._metadata = metadata

    def __enter__(self) -> list[tuple[str, Any]]:
        carrier: dict[str, str] = {}
        inject(carrier)
        return [*self._metadata, *carrier.items()]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class _UnrecordedAttempt:
    """An attempt whose span records nothing (``unrecorded.unrecorded_child``):
    the span is current and its context goes along, as the SDK's would; its
    name, attributes and status, which nothing would keep, are never made."""

    __slots__ = ("_metadata", "_span", "_token")

    def __init__(self, metadata: Sequence[tuple[str, Any]], span: Span) -> None:
        self._metadata = metadata
        self._span = span
        self._token: object = None

    def __enter__(self) -> list[tuple[str, Any]]:
        span = self._span
        context = trace.set_span_in_context(span)
        self._token = otel_context.attach(context)
        carrier: dict[str, str] = {}
        inject_span(carrier, span.get_span_context(), context)
        return [*self._metadata, *carrier.items()]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]


# (service, route) -> the client span's name and attributes, made once per route
# (the SDK copies the attributes into the span: sharing them is safe)
_client_routes: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}


def _client_route(service: str, route: str) -> tuple[str, dict[str, str]]:
    found = _client_routes.get((service, route))
    if found is None:
        rpc_service, rpc_method = split_method(route)
        attributes = {
            "rpc.system": "grpc",
            "rpc.service": rpc_service,
            "rpc.method": rpc_method,
            "peer.service": service,
        }
        found = _client_routes[(service, route)] = (route.lstrip("/"), attributes)
    return found


class _ClientSpan:
    """A recorded CLIENT span: ``tracer.start_as_current_span`` without
    recording exceptions or setting the status itself, as a class (the SDK's
    is two generator-based context managers deep)."""

    __slots__ = ("_metadata", "_route", "_service", "_span", "_token")

    def __init__(self, service: str, route: str, metadata: Sequence[tuple[str, Any]]) -> None:
        self._service = service
        self._route = route
        self._metadata = metadata
        self._span: Span = INVALID_SPAN
        self._token: object = None

    def __enter__(self) -> list[tuple[str, Any]]:
        name, attributes = _client_route(self._service, self._route)
        span = self._span = tracer.start_span(
            name,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        self._token = otel_context.attach(trace.set_span_in_context(span))
        carrier: dict[str, str] = {}
        inject(carrier)
        return [*self._metadata, *carrier.items()]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        try:
            status = Status.OK
            if exc is not None:
                status = status_of(exc)
                record_failure(span, exc, is_error=True)
            span.set_attribute("rpc.grpc.status_code", _STATUS_CODE[status])
        finally:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            span.end()
