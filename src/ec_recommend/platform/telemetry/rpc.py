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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from grpclib.const import Status
from grpclib.exceptions import GRPCError
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind

from ec_recommend.platform import errors
from ec_recommend.platform.rpc.context import current_call
from ec_recommend.platform.rpc.status import STATUS_BY_CODE
from ec_recommend.platform.telemetry.metrics import Metrics, process_metrics
from ec_recommend.platform.telemetry.tracing import (
    continue_trace,
    current_component,
    extract,
    inject,
    record_failure,
    sdk_installed,
    tracer,
)

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

    def server_span(call: ServerCall, rpc_service: str, rpc_method: str) -> Any:
        metadata: Any = call.stream.metadata or {}
        if not sdk_installed():
            if "traceparent" not in metadata:
                # No SDK and no trace to continue: a no-op span, nothing to make current.
                return _NO_SPAN
            return continue_trace(extract(metadata))  # no span to describe: no attributes
        parent = extract(metadata)
        attributes: dict[str, str | int] = {
            "rpc.system": "grpc",
            "rpc.service": rpc_service,
            "rpc.method": rpc_method,
            "ec.service": service,
        }
        # user.id is added by the identity middleware, once the caller is verified
        call_context = current_call()
        if call_context.request_id:
            attributes["ec.request_id"] = call_context.request_id
        return tracer.start_as_current_span(
            call.method.lstrip("/"),
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )

    methods: dict[str, tuple[str, str]] = {}  # route -> split_method(route), once per route

    async def middleware(call: ServerCall, call_next: Handler) -> None:
        split = methods.get(call.method)
        if split is None:
            split = methods[call.method] = split_method(call.method)
        rpc_service, rpc_method = split
        started = time.perf_counter()
        status = Status.OK
        component = current_component.set(service)
        try:
            with server_span(call, rpc_service, rpc_method) as span:
                if span.is_recording():
                    _capture_request(call, span)
                try:
                    await call_next()
                except BaseException as exc:
                    status = status_of(exc)
                    record_failure(span, exc, is_error=status in SERVER_FAULTS)
                    raise
                finally:
                    span.set_attribute("rpc.grpc.status_code", status.value)
                    elapsed = time.perf_counter() - started
                    if access_log.isEnabledFor(logging.DEBUG):
                        access_log.debug("%s %s %.1fms", call.method, status.name, elapsed * 1000)
        finally:
            current_component.reset(component)
            recorder.observe_grpc(service, rpc_method, status.name, time.perf_counter() - started)

    return middleware


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
    return _client_span(service, route, metadata)


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


@contextmanager
def _client_span(
    service: str, route: str, metadata: Sequence[tuple[str, Any]]
) -> Iterator[list[tuple[str, Any]]]:
    rpc_service, rpc_method = split_method(route)
    status = Status.OK
    with tracer.start_as_current_span(
        route.lstrip("/"),
        kind=SpanKind.CLIENT,
        attributes={
            "rpc.system": "grpc",
            "rpc.service": rpc_service,
            "rpc.method": rpc_method,
            "peer.service": service,
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        carrier: dict[str, str] = {}
        inject(carrier)
        try:
            yield [*metadata, *carrier.items()]
        except BaseException as exc:
            status = status_of(exc)
            record_failure(span, exc, is_error=True)
            raise
        finally:
            span.set_attribute("rpc.grpc.status_code", status.value)
