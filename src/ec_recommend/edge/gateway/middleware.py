"""The gateway's middleware: one layer around every request.

It does, in this order, what three middlewares used to (each a coroutine
frame and a dict round trip per request, a third of a cached read):

- telemetry (outermost): a SERVER span continuing the client's trace, the
  request counted in ``http_request_total``/``http_request_duration_seconds``
  by route template (label children resolved once per route), requests in
  flight, one ``ec_recommend.access`` line inside the span;
- errors: every response, including aiohttp's own 404/405/413 and crashes,
  leaves with the seed's error body and an ``X-Request-ID``;
- policy: routes.yaml applied to the paths it covers (and to every other
  /api path, as optional auth): token verified, rate limit counted (by the
  tier the caller turned out to be, RateLimit-* headers on every answer,
  404 and 405 included), method served by the route and allowed by the rule
  (else 405 with exactly those in ``Allow``; 501 for a method HTTP does not
  know), a declared body within the limit (else 413, before reading it),
  auth required (else 401), the route's group (else 403) - all before any
  handler, so a refused request never reaches a service. A client that goes
  away before its request is read is counted as 499, not as a server error.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry.trace import Status, StatusCode

from ec_recommend.edge.gateway import http_errors
from ec_recommend.edge.gateway.identity import bearer_token
from ec_recommend.edge.gateway.keys import GATEWAY, GATEWAY_CONFIG, IDENTITY, REQUEST_ID
from ec_recommend.edge.gateway.protocol import ClientClosed, new_request_id
from ec_recommend.edge.gateway.routes import RouteRule
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.context import Identity
from ec_recommend.platform.telemetry.http import (
    CLIENT_CLOSED,
    KNOWN_METHODS,
    access_log,
    route_template,
    server_span,
)
from ec_recommend.platform.telemetry.metrics import HttpRoute, Metrics, process_metrics
from ec_recommend.platform.telemetry.tracing import current_component, record_failure

log = logging.getLogger(__name__)

SERVICE = "gateway"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def request_id_of(request: web.Request) -> str:
    given = request.headers.get(http_errors.REQUEST_ID_HEADER, "")
    if given and _SAFE_REQUEST_ID.match(given):
        return given
    return new_request_id()


def gateway_middleware(metrics: Metrics | None = None) -> Middleware:
    """The gateway's only middleware; extra ones an app adds run inside it."""
    recorder = metrics or process_metrics()
    in_flight = recorder.http_in_flight_of(SERVICE)
    routes: dict[tuple[str, str], HttpRoute] = {}  # route templates x methods: bounded

    @web.middleware
    async def gateway(request: web.Request, handler: Handler) -> web.StreamResponse:
        method = request.method if request.method in KNOWN_METHODS else "_OTHER"
        started = time.perf_counter()
        status = 500
        endpoint = ""
        request_id = request_id_of(request)
        request[REQUEST_ID] = request_id
        in_flight.inc()
        component = current_component.set(SERVICE)
        try:
            with server_span(request, method) as span:
                try:
                    response = await _answer(request, handler, request_id)
                    status = response.status
                    return response
                except web.HTTPException as exc:  # a redirect, passed on as aiohttp expects
                    status = exc.status
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
            in_flight.dec()
            endpoint = endpoint or route_template(request)
            route = routes.get((endpoint, method))
            if route is None:
                route = routes[endpoint, method] = recorder.http_route(SERVICE, endpoint, method)
            route.observe(status, time.perf_counter() - started)

    return gateway


# Methods HTTP defines: any other is 501, these are 405 where not served.
_HTTP_METHODS = KNOWN_METHODS | {"TRACE", "CONNECT", "QUERY"}
# /api paths no rule covers still count against the caller's budget; the
# router answers them (404).
_UNROUTED_API = RouteRule("/api/*", "gateway", KNOWN_METHODS, "optional")


def _served_methods(request: web.Request, rule: RouteRule) -> frozenset[str]:
    """The methods the matched resource serves that ``rule`` allows (empty: no resource)."""
    match = request.match_info
    refused = match.http_exception
    if isinstance(refused, web.HTTPMethodNotAllowed):
        served = set(refused.allowed_methods)
    elif refused is None and match.route.resource is not None:
        served = {route.method for route in match.route.resource}
    else:
        served = set()
    return frozenset(served) & rule.methods


def _refuse_method(request: web.Request, rule: RouteRule) -> web.HTTPException:
    if request.method not in _HTTP_METHODS:
        return web.HTTPNotImplemented()
    allowed = _served_methods(request, rule)
    if not allowed:
        return web.HTTPNotFound()
    return web.HTTPMethodNotAllowed(request.method, allowed)


async def _answer(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    """The policy, then the handler; any failure as the seed's error body."""
    extra: Mapping[str, str] | None = None
    response: web.StreamResponse
    try:
        gateway = request.app[GATEWAY]
        rule = gateway.routes.match(request.path)
        if rule is None and request.path.startswith("/api/"):
            rule = _UNROUTED_API
        if rule is None:
            if request.method not in _HTTP_METHODS:
                raise web.HTTPNotImplemented()
            response = await handler(request)  # health probes, or the router's 404
        else:
            identity: Identity | None = None
            auth_error: errors.Unauthenticated | None = None
            # Routes without auth (/auth/*) ignore tokens: refreshing with an expired
            # token in the header must work, and they count as anonymous.
            if rule.auth != "none":
                try:
                    token = bearer_token(request.headers.get("Authorization"))
                    if token is not None:
                        identity = await gateway.identities.resolve(token, request_id)
                except errors.Unauthenticated as exc:
                    auth_error = exc  # counted against the anonymous budget first

            address = gateway.addresses.resolve(
                request.remote, request.headers.get("X-Forwarded-For")
            )
            tier, key = gateway.tiers.pick(identity, address)
            decision = await gateway.limiter.hit(tier, key)
            extra = decision.headers()
            if not decision.allowed:
                process_metrics().rate_limit_rejected(tier.name)
                response = http_errors.error_response(
                    http_errors.RATE_LIMITED,
                    f"rate limit of {tier.limit} requests per {int(tier.window)}s exceeded",
                    {"tier": tier.name},
                )
            else:
                if request.method not in _served_methods(request, rule):
                    raise _refuse_method(request, rule)
                declared = request.content_length
                if declared is not None and declared > request.app[GATEWAY_CONFIG].max_body_bytes:
                    raise web.HTTPRequestEntityTooLarge(
                        request.app[GATEWAY_CONFIG].max_body_bytes, declared
                    )
                if auth_error is not None:
                    raise auth_error
                if rule.auth == "required" and identity is None:
                    raise errors.Unauthenticated("a valid bearer token is required")
                if rule.group is not None and (
                    identity is None or rule.group not in identity.roles
                ):
                    raise errors.PermissionDenied(f"only the {rule.group} group may use this")
                if identity is not None:
                    request[IDENTITY] = identity
                response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            exc.headers[http_errors.REQUEST_ID_HEADER] = request_id
            raise
        response = http_errors.error_from_http_exception(exc)
    except errors.ServiceError as exc:
        response = http_errors.service_error_response(exc, request_id)
    except ClientClosed:
        log.info(
            "client closed %s %s before its request was read",
            request.method,
            request.path,
            extra={"request_id": request_id},
        )
        response = web.Response(status=CLIENT_CLOSED)  # never delivered: counted apart
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception(
            "unhandled error in %s %s (request %s)",
            request.method,
            request.path,
            request_id,
            extra={"request_id": request_id},
        )
        response = http_errors.internal_error_response(request_id)
    if extra:
        response.headers.update(extra)
    response.headers[http_errors.REQUEST_ID_HEADER] = request_id
    return response
