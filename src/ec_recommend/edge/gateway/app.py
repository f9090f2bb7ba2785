"""The gateway's aiohttp application: the composition root of the edge.

``create_app(setup)`` builds the app; its resources (service channels, the
token verifier, the Cognito client, the rate-limit backend) are opened in
``cleanup_ctx`` and closed with the app. Each endpoint is wrapped once: read
and validate input, run the handler inside a call context carrying the
caller, render the result as JSON.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import betterproto2
import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from grpclib.metadata import Deadline

from ec_recommend.config import Config, GatewayConfig
from ec_recommend.edge.gateway.accounts import Accounts
from ec_recommend.edge.gateway.client_address import ClientAddressResolver
from ec_recommend.edge.gateway.handlers import ENDPOINTS
from ec_recommend.edge.gateway.health import add_health_routes
from ec_recommend.edge.gateway.identity import IdentityResolver, TokenVerifier
from ec_recommend.edge.gateway.keys import (
    ACTIVITY,
    GATEWAY,
    GATEWAY_CONFIG,
    IDENTITY,
    PRODUCT_CACHE,
    REQUEST_ID,
    Gateway,
)
from ec_recommend.edge.gateway.middleware import gateway_middleware
from ec_recommend.edge.gateway.openapi import openapi_document
from ec_recommend.edge.gateway.operations import OPERATIONS, open_operations
from ec_recommend.edge.gateway.outcomes import timed_out
from ec_recommend.edge.gateway.protocol import EdgeAppRunner, name_the_server, read_body_bytes
from ec_recommend.edge.gateway.ratelimit import Tier, Tiers, open_rate_limiter
from ec_recommend.edge.gateway.request import ApiRequest
from ec_recommend.edge.gateway.routes import Endpoint, RouteTable, load_routes
from ec_recommend.edge.gateway.schema import IDEMPOTENCY_KEY
from ec_recommend.edge.realtime.setup import add_realtime
from ec_recommend.edge.web.site import add_web_routes
from ec_recommend.platform import errors
from ec_recommend.platform.cache import open_product_cache
from ec_recommend.platform.events.activity import ACTIVITY_TYPE, ActivitySender
from ec_recommend.platform.events.published_here import PublishedHere
from ec_recommend.platform.events.topology import load_topology
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.context import CallContext, call_scope
from ec_recommend.platform.security.tls import GATEWAY as GATEWAY_IDENTITY
from ec_recommend.platform.telemetry.http import metrics_handler

log = logging.getLogger(__name__)

JSON = "application/json"
REQUEST_TIMEOUT = "X-Request-Timeout"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"

VerifierFactory = Callable[[], AbstractAsyncContextManager[TokenVerifier]]
AccountsFactory = Callable[[], AbstractAsyncContextManager[Accounts]]


@dataclass(frozen=True)
class GatewaySetup:
    """What a gateway needs from its process.

    ``clients`` is shared with services hosted in the same process; without
    it the gateway dials ``config.rpc.endpoints`` itself. ``services`` are the ones
    ``/readyz`` checks. ``product_cache``: None caches products only while
    product events flow to invalidate the cache; True caches anyway (where
    invalidations reach the cache another way, e.g. from a parent process).
    """

    config: Config
    verifier: VerifierFactory
    accounts: AccountsFactory | None = None
    clients: ClientFactory | None = None
    services: Sequence[str] = ()
    routes: RouteTable | None = None
    ready: bool = True
    product_cache: bool | None = None
    # Recheck each caller's account with ``accounts`` (enabled, not deleted)
    # every few seconds: for accounts from the pool that signed the tokens.
    recheck_accounts: bool = False
    # What the outbox relays of this process publish, when they are those of
    # every service whose events are pushed: push hears them there.
    published_here: PublishedHere | None = None


def tiers_of(config: GatewayConfig) -> Tiers:
    window = config.rate_limit_window
    return Tiers(
        anonymous=Tier("anonymous", config.rate_limit_anonymous, window),
        authenticated=Tier("authenticated", config.rate_limit_authenticated, window),
        seller=Tier("seller", config.rate_limit_seller, window),
    )


def create_app(setup: GatewaySetup, middlewares: Sequence[Middleware] = ()) -> web.Application:
    """The gateway app; ``middlewares`` run inside the telemetry, error and policy layer."""
    routes = setup.routes or load_routes()
    app = web.Application(
        client_max_size=setup.config.gateway.max_body_bytes,
        middlewares=[gateway_middleware(), *middlewares],
    )

    async def resources(app: web.Application) -> Any:
        async with AsyncExitStack() as stack:
            clients = setup.clients
            if clients is None:
                clients = await stack.enter_async_context(
                    ClientFactory.from_config(setup.config, identity=GATEWAY_IDENTITY)
                )
            verifier = await stack.enter_async_context(setup.verifier())
            accounts = None
            if setup.accounts is not None:
                accounts = await stack.enter_async_context(setup.accounts())
            limiter = await stack.enter_async_context(
                open_rate_limiter(
                    setup.config.gateway.rate_limit_backend, setup.config.gateway.redis_url
                )
            )
            app[GATEWAY] = Gateway(
                clients=clients,
                identities=IdentityResolver(
                    verifier, clients, directory=accounts if setup.recheck_accounts else None
                ),
                limiter=limiter,
                tiers=tiers_of(setup.config.gateway),
                addresses=ClientAddressResolver(setup.config.gateway.trusted_proxies),
                routes=routes,
                accounts=accounts,
                services=tuple(setup.services),
                ready=setup.ready,
                request_timeout=setup.config.gateway.request_timeout,
            )
            if setup.config.events.enabled:
                topology = load_topology(setup.config.events.topology_path)
                app[ACTIVITY] = await stack.enter_async_context(
                    ActivitySender(
                        setup.config.events, queues=topology.direct_queues(ACTIVITY_TYPE)
                    )
                )
            # Cached only while product events flow to invalidate it, unless told.
            invalidated = setup.product_cache
            if invalidated is None:
                invalidated = setup.config.events.enabled
            app[PRODUCT_CACHE] = await stack.enter_async_context(
                open_product_cache(setup.config.cache, invalidated=invalidated)
            )
            app[OPERATIONS] = await stack.enter_async_context(open_operations(setup.config))
            yield

    app[GATEWAY_CONFIG] = setup.config.gateway
    app.cleanup_ctx.append(resources)
    app.on_response_prepare.append(name_the_server)
    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, endpoint.path, endpoint_handler(endpoint))
    add_health_routes(app)
    add_web_routes(app)  # the browser front end: /, /seller, /console, /static/*
    add_realtime(app, setup.config, setup.published_here)  # GET /api/v1/ws
    app.router.add_get("/metrics", metrics_handler(), allow_head=False)
    document = orjson.dumps(openapi_document(ENDPOINTS, routes))

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=document, content_type=JSON)

    app.router.add_get("/api/v1/openapi.json", openapi, allow_head=False)
    return app


def mark_ready(app: web.Application) -> None:
    """Let /readyz answer 200 (``up`` calls this once everything is in place)."""
    app[GATEWAY].ready = True


def render(result: Any, status: int) -> web.Response:
    """A handler's result as the response: None is 204, bytes are rendered JSON already."""
    if result is None:
        return web.Response(status=204)
    if isinstance(result, bytes):
        return web.Response(status=status, body=result, content_type=JSON)
    if isinstance(result, betterproto2.Message):
        from ec_recommend.edge.gateway.transcode import message_to_json

        result = message_to_json(result)
    return web.Response(status=status, body=orjson.dumps(result), content_type=JSON)


async def _read_body(request: web.Request, endpoint: Endpoint) -> dict[str, Any]:
    if endpoint.body is None:
        return {}
    raw = await read_body_bytes(request, request.app[GATEWAY_CONFIG].read_timeout)
    if not raw:
        raise errors.InvalidArgument("body: a JSON object is required", field="body")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.InvalidArgument("body: not valid JSON", field="body") from None
    result: dict[str, Any] = endpoint.body.validate(data, "")
    return result


def _read_query(request: web.Request, endpoint: Endpoint) -> dict[str, Any]:
    query = request.query
    if not query:
        return {}
    if len(query) != len(set(query.keys())):
        duplicated = next(k for k in query if len(query.getall(k)) > 1)
        raise errors.InvalidArgument(f"{duplicated}: given more than once", field=duplicated)
    if endpoint.query is None:
        name = next(iter(query))
        raise errors.InvalidArgument(f"{name}: unknown query parameter", field=name)
    return endpoint.query.parse_query(dict(query))


def request_budget(header: str | None, limit: float) -> float:
    """Seconds this request may take: the client's ``X-Request-Timeout``, at most ``limit``."""
    if header is None:
        return limit
    try:
        asked = float(header)
    except ValueError:
        asked = 0.0
    if not 0 < asked < float("inf"):
        raise errors.InvalidArgument(
            f"{REQUEST_TIMEOUT}: a positive number of seconds", field=REQUEST_TIMEOUT
        )
    return min(asked, limit)


def endpoint_handler(endpoint: Endpoint) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        identity = request.get(IDENTITY)
        if endpoint.auth == "required" and identity is None:
            raise errors.Unauthenticated("a valid bearer token is required")
        params = endpoint.validate_path(request.match_info)
        query = _read_query(request, endpoint)
        body = await _read_body(request, endpoint)
        key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
        if key is not None:  # an empty key is a mistake, not "no key"
            IDEMPOTENCY_KEY.validate(key, IDEMPOTENCY_KEY_HEADER)
        if endpoint.peek is not None:
            cached = endpoint.peek(request, identity)
            if cached is not None:
                return web.Response(status=endpoint.status, body=cached, content_type=JSON)
        gateway = request.app[GATEWAY]
        api_request = ApiRequest(
            http=request,
            params=params,
            body=body,
            query=query,
            identity=identity,
            clients=gateway.clients,
        )
        budget = request_budget(request.headers.get(REQUEST_TIMEOUT), gateway.request_timeout)
        context = CallContext(
            identity=identity,
            request_id=request[REQUEST_ID],
            idempotency_key=key or "",
            deadline=Deadline.from_timeout(budget),
        )
        try:
            async with asyncio.timeout(budget):
                with call_scope(context):
                    result = await endpoint.handler(api_request)
        except (TimeoutError, errors.DeadlineExceeded):
            raise timed_out(endpoint, has_key=bool(key)) from None
        return render(result, endpoint.status)

    handle.__name__ = endpoint.operation_id
    return handle


def cognito_setup(
    config: Config,
    *,
    clients: ClientFactory | None = None,
    services: Sequence[str] = (),
    ready: bool = True,
    published_here: PublishedHere | None = None,
) -> GatewaySetup:
    """A gateway verifying Cognito tokens and serving /auth/* from the configured pool."""
    from ec_recommend.platform.auth.cognito import open_accounts
    from ec_recommend.platform.auth.verifier import TokenVerifier

    if not config.auth.configured:
        raise ValueError("the gateway needs auth.user_pool_id and auth.client_id")
    return GatewaySetup(
        config=config,
        verifier=lambda: TokenVerifier.from_config(config.auth),
        accounts=lambda: open_accounts(config.auth),
        clients=clients,
        services=services,
        ready=ready,
        recheck_accounts=True,
        published_here=published_here,
    )


@asynccontextmanager
async def serving(
    app: web.Application, host: str, port: int, *, reuse_port: bool = False
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` (0 = a free port); yields its base URL.

    ``reuse_port``: other processes may listen on the same port (SO_REUSEPORT);
    the kernel spreads connections over them (gateway workers).
    """
    runner = EdgeAppRunner(
        app,
        read_timeout=app[GATEWAY_CONFIG].read_timeout,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=5.0,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
        bound = runner.addresses[0][1]
        yield f"http://{host}:{bound}"
    finally:
        await runner.cleanup()


ROUTED_SERVICES = ("user", "product", "cart", "order", "search", "recommendation")


@asynccontextmanager
async def served_gateway(
    config: Config,
    clients: ClientFactory,
    hosted: Mapping[str, str] | Sequence[str] = (),
    *,
    workers: int = 1,
    published_here: PublishedHere | None = None,
) -> AsyncIterator[str]:
    """The gateway of ``ec-recommend serve gateway``: Cognito auth, on ``config.gateway``.

    ``hosted`` names the services this process hosts (with their addresses,
    which ``workers`` > 1 worker processes dial). /readyz checks the routed
    services this process hosts or has endpoints for. ``published_here``
    hears what this process's relays publish (``backend_of``).
    """
    from ec_recommend.edge.gateway.workers import (
        GatewayWorkers,
        per_process_limits,
        worker_spec,
    )
    from ec_recommend.platform.cache import LocalProductCache

    reachable = set(hosted) | set(config.rpc.endpoints)
    services = [n for n in ROUTED_SERVICES if n in reachable]
    config = per_process_limits(config, workers)
    app = create_app(
        cognito_setup(config, clients=clients, services=services, published_here=published_here)
    )
    host = config.gateway.host
    async with AsyncExitStack() as stack:
        # Workers are waited for after this gateway's own shutdown, told to stop before it.
        workers_exit = await stack.enter_async_context(AsyncExitStack())
        url = await stack.enter_async_context(
            serving(app, host, config.gateway.port, reuse_port=workers > 1)
        )
        if workers > 1:
            addresses = dict(hosted) if isinstance(hosted, Mapping) else {}
            spec = worker_spec(
                config, port=int(url.rsplit(":", 1)[1]), endpoints=addresses, services=services
            )
            cache = app[PRODUCT_CACHE]
            local = cache if isinstance(cache, LocalProductCache) else None
            started = await workers_exit.enter_async_context(
                GatewayWorkers(spec, workers - 1, local)
            )
            stack.callback(started.begin_stop)
        yield url
