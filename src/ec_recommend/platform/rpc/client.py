"""Typed clients for any service by name, with the mesh policies applied.

``ClientFactory.stub(ProductServiceStub, "product")`` returns the generated
stub whose calls all go through one ``CallInvoker``. It forwards the current
call context (identity, request id, idempotency key) as metadata, bounds the
call by the smaller of the service timeout and the caller's remaining
deadline (only the service's own timeout counts against it: see
``budget.py``), and applies the target's policies from ``mesh.yaml``: circuit
breaker, retries with backoff and a retry budget (idempotent methods only),
round robin over healthy endpoints and pooled connections (seed 10.1), and
mTLS with the caller's service certificate. Failures become the typed errors
of ``platform.errors``.

A service hosted in this process (``host_locally``) is called directly, under
the same policies, with no socket in between: see ``local.py``. Calls to
other processes go over grpcio (``aio_channel.py``) or grpclib, as
``rpc.transport`` says (``transports.py``).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import grpc
from betterproto2.grpclib.grpclib_client import MetadataLike, ServiceStub
from grpclib.client import Channel
from grpclib.config import Configuration
from grpclib.const import Cardinality
from grpclib.exceptions import GRPCError, StreamTerminatedError
from grpclib.metadata import Deadline

from ec_recommend.config import Config, Endpoint
from ec_recommend.platform import errors
from ec_recommend.platform.retry import RetriesExhausted, with_retry
from ec_recommend.platform.rpc import transports
from ec_recommend.platform.rpc.aio_channel import AioChannel, Unreachable
from ec_recommend.platform.rpc.balancer import Balancer, EndpointState
from ec_recommend.platform.rpc.breaker import CircuitBreaker, CircuitOpen
from ec_recommend.platform.rpc.budget import CallBudget, TryDeadline
from ec_recommend.platform.rpc.codec import FastProtoCodec
from ec_recommend.platform.rpc.context import current_call
from ec_recommend.platform.rpc.mesh import MeshConfig, ServicePolicy, load_mesh
from ec_recommend.platform.rpc.observers import MeshObserver, Observers
from ec_recommend.platform.rpc.retry import (
    RetryBudgetBucket,
    counts_as_failure,
    refused_for_dependency,
)
from ec_recommend.platform.rpc.status import ErrorDetailsCodec, from_grpc_error
from ec_recommend.platform.rpc.transport import CoalescingChannel
from ec_recommend.platform.security.call_token import (
    METADATA_KEY as CALL_TOKEN,
)
from ec_recommend.platform.security.call_token import (
    CallSigner,
    CallSigning,
    signer_for,
)
from ec_recommend.platform.security.identity import current_actor
from ec_recommend.platform.security.tls import ClientTls
from ec_recommend.platform.telemetry.mesh import MeshMetrics
from ec_recommend.platform.telemetry.rpc import client_span

if TYPE_CHECKING:
    from ec_recommend.platform.rpc.server import RpcServer

StubT = TypeVar("StubT", bound=ServiceStub)

# with_retry's reasons for stopping, in the mesh metrics' words
_DENIED = {"attempts": "max_retries", "deadline": "deadline", "denied": "budget"}


class _AttemptFailed(Exception):
    """One try failed; ``sent`` is False when the request surely never left.

    ``callers_budget``: it ran out of the caller's time, not the service's.
    """

    def __init__(
        self, error: errors.ServiceError, *, sent: bool, callers_budget: bool = False
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.sent = sent
        self.callers_budget = callers_budget


class CallInvoker:
    """Runs unary calls to one service under that service's policies."""

    def __init__(
        self,
        service: str,
        balancer: Balancer,
        policy: ServicePolicy,
        *,
        observers: MeshObserver | None = None,
        identity: ClientTls | None = None,
        local: RpcServer | None = None,
        signing: CallSigning | None = None,
    ) -> None:
        self.service = service
        self._signing = signing
        self.balancer = balancer
        self.policy = policy
        self.timeout = policy.timeout
        self.observers = observers or MeshObserver()
        self.breaker = CircuitBreaker(
            service,
            policy.breaker.threshold,
            policy.breaker.timeout,
            on_change=self.observers.breaker_changed,
        )
        self.budget = RetryBudgetBucket(policy.budget)
        self._tls = identity
        # the server of ``service`` when this process hosts it: calls go straight to it
        self.local = local
        self._codec = FastProtoCodec()
        self._backoff = policy.retry.backoff
        self._methods: dict[str, str] = {}  # route -> method name, once per route

    @property
    def pool(self) -> Balancer:
        return self.balancer

    def time_limits(self, explicit: float | None) -> CallBudget:
        """This call's time: the service's timeout, and the caller's deadline if any."""
        return CallBudget.start(
            self.timeout, explicit=explicit, travelled=current_call().remaining()
        )

    def try_cap(self, idempotent: bool) -> float | None:
        """``retry_timeout`` bounds a try only when a timed-out try can be retried.

        A try that cannot be followed by another (a write without an
        idempotency key, or DEADLINE_EXCEEDED not in ``retry_on``) gets the
        whole ``timeout``: capping it would only end its one chance early.
        """
        retry = self.policy.retry
        if idempotent and retry.max_retries > 0 and "DEADLINE_EXCEEDED" in retry.retry_on:
            return retry.retry_timeout
        return None

    async def unary_unary(
        self,
        route: str,
        request: Any,
        response_type: type[Any],
        *,
        timeout: float | None,
        metadata: MetadataLike | None,
    ) -> Any:
        call = current_call()
        outgoing = call.to_metadata()
        token = None if self._signing is None else self._signing.token()
        if token is not None:
            outgoing.append((CALL_TOKEN, token))
        if metadata:
            pairs = metadata.items() if isinstance(metadata, Mapping) else metadata
            outgoing.extend((str(k), v) for k, v in pairs)  # type: ignore[misc]
        limits = self.time_limits(timeout)
        method = self._methods.get(route)
        if method is None:
            method = self._methods[route] = route.rsplit("/", 1)[-1]
        has_key = bool(call.idempotency_key or getattr(request, "idempotency_key", ""))
        idempotent = self.policy.is_idempotent(method, has_key=has_key)
        retry = self.policy.retry
        cap = self.try_cap(idempotent)
        started = time.perf_counter()
        self.budget.on_request()
        code = "OK"

        async def one_try() -> Any:
            try_deadline = limits.next_try(cap)
            if try_deadline.time_remaining() <= 0:
                raise errors.DeadlineExceeded(f"no time left to call {self.service}")
            with client_span(self.service, route, outgoing) as traced:
                return await self._attempt(route, request, response_type, traced, try_deadline)

        def retryable(exc: Exception) -> bool:
            return isinstance(exc, _AttemptFailed) and self._retryable(exc, idempotent)

        def retried(attempt: int, exc: Exception, delay: float) -> None:
            assert isinstance(exc, _AttemptFailed)
            self.observers.retried(self.service, method, exc.error.code, attempt)

        try:
            return await with_retry(
                one_try,
                is_retryable=retryable,
                backoff=self._backoff,
                max_attempts=retry.max_retries + 1,
                deadline=asyncio.get_running_loop().time() + limits.time_remaining(),
                may_retry=self.budget.try_spend,
                on_retry=retried,
            )
        except _AttemptFailed as failed:
            code = failed.error.code
            raise failed.error from None
        except RetriesExhausted as exhausted:
            assert isinstance(exhausted.last, _AttemptFailed)
            code = exhausted.last.error.code
            self.observers.retry_denied(self.service, method, _DENIED[exhausted.reason])
            raise exhausted.last.error from None
        except errors.ServiceError as exc:
            code = exc.code
            raise
        finally:
            self.observers.call_finished(self.service, method, code, time.perf_counter() - started)

    def _retryable(self, failed: _AttemptFailed, idempotent: bool) -> bool:
        if failed.error.code not in self.policy.retry.retry_on:
            return False
        if isinstance(failed.error, CircuitOpen) or refused_for_dependency(failed.error):
            return False  # a circuit (ours, or the service's own) is open: it would be again
        if failed.callers_budget:
            return False  # the caller has no time left for another try
        # A write may be repeated only if it is idempotent or never left.
        return idempotent or not failed.sent

    async def _attempt(
        self,
        route: str,
        request: Any,
        response_type: type[Any],
        outgoing: Sequence[tuple[str, Any]],
        limit: TryDeadline,
    ) -> Any:
        deadline = limit.deadline
        try:
            trial = self.breaker.admit()
        except CircuitOpen as exc:
            raise _AttemptFailed(exc, sent=False) from None
        endpoint: EndpointState | None = None
        sent = False
        try:
            if self.local is not None:
                sent = True
                response = await self._exchange_local(
                    self.local, route, request, response_type, outgoing, deadline
                )
            else:
                identity = self._identity()
                endpoint = self.balancer.choose(identity)
                channel = self.balancer.channel(endpoint, identity)
                if isinstance(channel, AioChannel):
                    if not channel.ready:
                        await self._connect(channel.connect, deadline, limit)
                    sent = True
                    response = await self._exchange_aio(
                        channel, route, request, response_type, outgoing, deadline
                    )
                else:
                    if not channel._connected:  # grpclib's own check; connected is the hot path
                        await self._connect(channel.__connect__, deadline, limit)
                    sent = True
                    response = await self._exchange(
                        channel, route, request, response_type, outgoing, deadline
                    )
        except errors.ServiceError as exc:
            callers_budget = limit.callers and exc.code == "DEADLINE_EXCEEDED"
            if callers_budget:
                # the caller's time ran out, not the service's: no verdict on it
                self.breaker.abandon(trial=trial)
            else:
                self._record(endpoint, exc)
            # a draining server refused the call before doing any work
            refused = exc.details.get("reason") == "draining"
            raise _AttemptFailed(
                exc, sent=sent and not refused, callers_budget=callers_budget
            ) from None
        except BaseException:
            self.breaker.abandon(trial=trial)
            raise
        self.breaker.success()
        if endpoint is not None:
            self.balancer.success(endpoint)
        return response

    async def _connect(
        self, connect: Callable[[], Awaitable[object]], deadline: Deadline, limit: TryDeadline
    ) -> None:
        try:
            async with asyncio.timeout(deadline.time_remaining()):
                await connect()
        except TimeoutError:
            if limit.callers:
                raise errors.DeadlineExceeded(
                    f"no time left to connect to {self.service}"
                ) from None
            raise errors.Unavailable(f"{self.service} is unreachable: timed out") from None
        except (OSError, Unreachable) as exc:
            raise errors.Unavailable(f"{self.service} is unreachable: {exc}") from None

    async def _exchange_local(
        self,
        server: RpcServer,
        route: str,
        request: Any,
        response_type: type[Any],
        outgoing: Sequence[tuple[str, Any]],
        deadline: Deadline,
    ) -> Any:
        codec = self._codec
        try:
            reply = await server.call_local(
                route, codec.encode(request, type(request)), outgoing, deadline, self._caller()
            )
        except GRPCError as exc:
            raise from_grpc_error(exc) from None
        if reply is None:
            raise errors.Internal(f"{self.service} sent no response")
        return codec.decode(reply, response_type)

    async def _exchange(
        self,
        channel: Channel,
        route: str,
        request: Any,
        response_type: type[Any],
        outgoing: Sequence[tuple[str, Any]],
        deadline: Deadline,
    ) -> Any:
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

    async def _exchange_aio(
        self,
        channel: AioChannel,
        route: str,
        request: Any,
        response_type: type[Any],
        outgoing: Sequence[tuple[str, Any]],
        deadline: Deadline,
    ) -> Any:
        codec = self._codec
        try:
            reply = await channel.unary(
                route, codec.encode(request, type(request)), outgoing, deadline.time_remaining()
            )
        except GRPCError as exc:
            raise from_grpc_error(exc) from None
        return codec.decode(reply, response_type)

    def _record(self, endpoint: EndpointState | None, error: errors.ServiceError) -> None:
        if counts_as_failure(error):
            self.breaker.failure()
        else:
            self.breaker.success()
        if endpoint is None:  # in process: no endpoint to eject
            return
        if error.code == "UNAVAILABLE" and not refused_for_dependency(error):
            self.balancer.failure(endpoint)
        else:
            self.balancer.success(endpoint)

    def _identity(self) -> str | None:
        return None if self._tls is None else self._tls.identity_for(current_actor())

    def stub_channel(self) -> Channel:
        """The channel a stub is built on; its calls come here and pick their own.

        It takes no turn in the rotation (the gateway builds a stub per
        request: taking one would send every call of a gateway to the same
        one of two replicas), and is the current caller's, not the process's
        default identity: a process that hosts only consumers or services,
        each with its own certificate, has none.
        """
        return self.balancer.channel(self.balancer.endpoints[0], self._identity())

    def _caller(self) -> str | None:
        """Who an in-process call comes from: what its certificate would say."""
        if self._tls is None:
            return None
        return self._tls.presented_service(self._tls.identity_for(current_actor()))

    def health(self) -> dict[str, Any]:
        return {"circuit": self.breaker.state.value, "endpoints": self.balancer.report()}


class ClientFactory:
    """Owns the clients of one process: policies, balancers, channels."""

    def __init__(
        self,
        endpoints: Mapping[str, Sequence[Endpoint]],
        *,
        pool_size: int = 2,
        timeout: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
        mesh: MeshConfig | None = None,
        tls: ClientTls | None = None,
        signer: CallSigner | None = None,
        service: str | None = None,
        transport: str | None = None,
    ) -> None:
        self._endpoints = dict(endpoints)
        # a ready SSLContext can only be spoken through grpclib (grpcio takes PEM files)
        self.transport = "grpclib" if ssl_context is not None else transports.resolve(transport)
        # Who calls made outside every service and consumer come from (the gateway).
        self.signing = CallSigning(service or "internal")
        self.signing.signer = signer
        self._pool_size = pool_size
        self._ssl = ssl_context
        self._tls = tls
        mesh = mesh if mesh is not None else load_mesh()
        if timeout is not None:
            mesh = replace(mesh, defaults=replace(mesh.defaults, timeout=timeout))
        self.mesh = mesh
        self.observers = Observers()
        self.observers.observers.append(MeshMetrics())
        self._invokers: dict[str, CallInvoker] = {}
        self._local: dict[str, RpcServer] = {}
        self._grpc_credentials: dict[str | None, grpc.ChannelCredentials] = {}

    @classmethod
    def from_config(
        cls, config: Config, *, identity: str | None = None, mesh: MeshConfig | None = None
    ) -> ClientFactory:
        """The factory a process uses: its endpoints, mesh.yaml and mTLS identity.

        A call made while serving a request, or by a service's or consumer's
        own tasks, presents the certificate of that service or consumer.
        ``identity`` names the one presented by calls outside all of them (the
        gateway's); None: the process's own ``tls.certificates.cert``.
        """
        return cls(
            config.rpc.endpoints,
            pool_size=config.rpc.pool_size,
            timeout=config.rpc.default_timeout,
            mesh=mesh if mesh is not None else load_mesh(config.mesh_file),
            tls=ClientTls(config.tls, identity) if config.tls.enabled else None,
            signer=signer_for(config),
            service=identity,
            transport=config.rpc.transport,
        )

    def add_observer(self, observer: MeshObserver) -> None:
        """Hook for metrics: breaker states, retries, endpoint health, calls."""
        self.observers.observers.append(observer)

    def add_endpoints(self, service: str, endpoints: Sequence[Endpoint]) -> None:
        """Register where ``service`` listens (used when a process hosts it)."""
        if service in self._invokers:
            raise RuntimeError(f"clients of {service} already exist")
        self._endpoints[service] = tuple(endpoints)

    def host_locally(self, server: RpcServer) -> None:
        """Call ``server.service`` in process from now on: its server is ``server``.

        Its endpoints (if any) stay registered for health reports, but calls
        no longer use them.
        """
        self._local[server.service] = server
        invoker = self._invokers.get(server.service)
        if invoker is not None:
            invoker.local = server

    def invoker(self, service: str) -> CallInvoker:
        invoker = self._invokers.get(service)
        if invoker is None:
            endpoints = self._endpoints.get(service)
            if not endpoints:
                raise errors.Unavailable(f"no endpoint configured for service {service!r}")
            policy = self.mesh.policy(service)
            balancer = Balancer(
                service,
                endpoints,
                policy.outlier,
                lambda endpoint, identity: self._channel(service, endpoint, identity),
                pool_size=self._pool_size,
                on_health=self.observers.endpoint_health,
            )
            invoker = CallInvoker(
                service,
                balancer,
                policy,
                observers=self.observers,
                identity=self._tls,
                local=self._local.get(service),
                signing=self.signing,
            )
            self._invokers[service] = invoker
        return invoker

    def _channel(self, service: str, endpoint: Endpoint, identity: str | None) -> Channel:
        context = self._ssl
        if self._tls is not None:
            context = self._tls.context(identity)
        # With TLS, the server must prove it is ``service``, whatever its address.
        config = Configuration(ssl_target_name_override=service) if context else None
        if self.transport == "grpcio":
            credentials = None if self._tls is None else self._credentials(identity)
            return AioChannel(
                endpoint.host,
                endpoint.port,
                credentials=credentials,
                target_name=service if credentials is not None else None,
                ssl=context,
                codec=FastProtoCodec(),
                status_details_codec=ErrorDetailsCodec(),
                config=config,
            )
        return CoalescingChannel(
            endpoint.host,
            endpoint.port,
            ssl=context,
            codec=FastProtoCodec(),
            status_details_codec=ErrorDetailsCodec(),
            config=config,
        )

    def _credentials(self, identity: str | None) -> grpc.ChannelCredentials:
        """grpcio's credentials presenting ``identity``'s certificate, made once each."""
        credentials = self._grpc_credentials.get(identity)
        if credentials is None:
            assert self._tls is not None
            ca, cert, key = self._tls.pem(identity)
            credentials = self._grpc_credentials[identity] = grpc.ssl_channel_credentials(
                ca, key, cert
            )
        return credentials

    def stub(self, stub_type: type[StubT], service: str) -> StubT:
        invoker = self.invoker(service)
        stub = _policy_stub_type(stub_type)(invoker.stub_channel())
        stub._ec_invoker = invoker  # type: ignore[attr-defined]
        return stub

    def health_report(self) -> dict[str, dict[str, Any]]:
        """Circuit state and endpoint health of every service called so far.

        ``{"product": {"circuit": "open", "endpoints": [{"address", "healthy"}]}}``;
        the gateway's /readyz lists open circuits (as information: it stays ready).
        """
        return {name: invoker.health() for name, invoker in self._invokers.items()}

    def open_circuits(self) -> list[str]:
        return [n for n, i in self._invokers.items() if i.breaker.state.value == "open"]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for invoker in self._invokers.values():
            await invoker.balancer.close()
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
