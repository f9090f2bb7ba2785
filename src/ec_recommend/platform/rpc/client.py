"""Typed clients for any service by name, over pooled channels.

``ClientFactory.stub(ProductServiceStub, "product")`` returns the generated
stub whose calls go through one ``CallInvoker``: it forwards the current call
context (identity, request id, idempotency key) as metadata, bounds the call
by the smaller of the service timeout and the caller's remaining deadline,
spreads calls round robin over a pool of channels (seed 10.1), and turns
failures into the typed errors of ``platform.errors``.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from betterproto2.grpclib.grpclib_client import MetadataLike, ServiceStub
from grpclib.client import Channel
from grpclib.const import Cardinality
from grpclib.exceptions import GRPCError, StreamTerminatedError
from grpclib.metadata import Deadline

from ec_recommend.config import Endpoint
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.context import current_call
from ec_recommend.platform.rpc.status import ErrorDetailsCodec, from_grpc_error

StubT = TypeVar("StubT", bound=ServiceStub)


class ChannelPool:
    """``size`` HTTP/2 connections to each endpoint, picked round robin."""

    def __init__(
        self, endpoints: Sequence[Endpoint], size: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        if not endpoints:
            raise ValueError("a channel pool needs at least one endpoint")
        codec = ErrorDetailsCodec()
        self.channels = [
            Channel(ep.host, ep.port, ssl=ssl_context, status_details_codec=codec)
            for _ in range(size)
            for ep in endpoints
        ]
        self._next = itertools.cycle(self.channels)

    def pick(self) -> Channel:
        return next(self._next)

    def close(self) -> None:
        for channel in self.channels:
            channel.close()


class CallInvoker:
    """Runs one unary call to one service with context, deadline and errors."""

    def __init__(self, service: str, pool: ChannelPool, timeout: float) -> None:
        self.service = service
        self.pool = pool
        self.timeout = timeout

    def deadline(self, explicit: float | None) -> Deadline:
        budget = self.timeout if explicit is None else min(explicit, self.timeout)
        remaining = current_call().remaining()
        if remaining is not None:
            budget = min(budget, remaining)
        return Deadline.from_timeout(max(budget, 0.0))

    async def unary_unary(
        self,
        route: str,
        request: Any,
        response_type: type[Any],
        *,
        timeout: float | None,
        metadata: MetadataLike | None,
    ) -> Any:
        outgoing = current_call().to_metadata()
        if metadata:
            pairs = metadata.items() if isinstance(metadata, Mapping) else metadata
            outgoing.extend((str(k), v) for k, v in pairs)  # type: ignore[misc]
        deadline = self.deadline(timeout)
        if deadline.time_remaining() <= 0:
            raise errors.DeadlineExceeded(f"no time left to call {self.service}")
        channel = self.pool.pick()
        try:
            async with channel.request(
                route,
                Cardinality.UNARY_UNARY,
                type(request),
                response_type,
                deadline=deadline,
                metadata=outgoing,
            ) as stream:
                await stream.send_message(request, end=True)
                response = await stream.recv_message()
        except GRPCError as exc:
            raise from_grpc_error(exc) from None
        except TimeoutError:
            raise errors.DeadlineExceeded(f"{self.service} did not answer in time") from None
        except (OSError, StreamTerminatedError) as exc:
            raise errors.Unavailable(f"{self.service} is unreachable: {exc}") from None
        if response is None:
            raise errors.Internal(f"{self.service} sent no response")
        return response


class ClientFactory:
    """Owns the channel pools of one process; closes them on exit."""

    def __init__(
        self,
        endpoints: Mapping[str, Sequence[Endpoint]],
        *,
        pool_size: int = 2,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._endpoints = dict(endpoints)
        self._pool_size = pool_size
        self._timeout = timeout
        self._ssl = ssl_context
        self._invokers: dict[str, CallInvoker] = {}

    def add_endpoints(self, service: str, endpoints: Sequence[Endpoint]) -> None:
        """Register where ``service`` listens (used when a process hosts it)."""
        if service in self._invokers:
            raise RuntimeError(f"clients of {service} already exist")
        self._endpoints[service] = tuple(endpoints)

    def invoker(self, service: str) -> CallInvoker:
        invoker = self._invokers.get(service)
        if invoker is None:
            endpoints = self._endpoints.get(service)
            if not endpoints:
                raise errors.Unavailable(f"no endpoint configured for service {service!r}")
            pool = ChannelPool(endpoints, self._pool_size, self._ssl)
            invoker = self._invokers[service] = CallInvoker(service, pool, self._timeout)
        return invoker

    def stub(self, stub_type: type[StubT], service: str) -> StubT:
        invoker = self.invoker(service)
        stub = _policy_stub_type(stub_type)(invoker.pool.channels[0])
        stub._ec_invoker = invoker  # type: ignore[attr-defined]
        return stub

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for invoker in self._invokers.values():
            invoker.pool.close()
        self._invokers.clear()


_stub_types: dict[type[Any], type[Any]] = {}


def _policy_stub_type(stub_type: type[StubT]) -> type[StubT]:
    """A subclass of a generated stub whose unary calls go through the invoker."""
    cached = _stub_types.get(stub_type)
    if cached is None:

        async def _unary_unary(
            self: Any,
            route: str,
            request: Any,
            response_type: type[Any],
            *,
            timeout: float | None = None,
            deadline: Deadline | None = None,
            metadata: MetadataLike | None = None,
        ) -> Any:
            if deadline is not None:
                remaining = deadline.time_remaining()
                timeout = remaining if timeout is None else min(timeout, remaining)
            invoker: CallInvoker = self._ec_invoker
            return await invoker.unary_unary(
                route, request, response_type, timeout=timeout, metadata=metadata
            )

        cached = type(stub_type.__name__, (stub_type,), {"_unary_unary": _unary_unary})
        _stub_types[stub_type] = cached
    return cached
