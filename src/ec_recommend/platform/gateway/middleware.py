"""The gateway's middleware chain.

``errors_middleware`` is outermost: every response, including aiohttp's own
404/405/413 and crashes, leaves with the seed's error body and an
``X-Request-ID``. ``policy_middleware`` applies routes.yaml to paths it
covers: method allowed (else 405), token verified, rate limit counted (by the
tier the caller turned out to be), auth required (else 401) - all before any
handler, so a refused request never reaches a service.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from ec_recommend.platform import errors
from ec_recommend.platform.gateway import http_errors
from ec_recommend.platform.gateway.identity import bearer_token
from ec_recommend.platform.gateway.keys import GATEWAY, IDENTITY, REQUEST_ID, RESPONSE_HEADERS
from ec_recommend.platform.rpc.context import Identity
from ec_recommend.platform.telemetry.metrics import process_metrics

log = logging.getLogger(__name__)

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


# Unique per process start, then a counter: cheaper than a random id per request.
_ID_PREFIX = uuid.uuid4().hex[:16]
_id_counter = itertools.count(1)


def request_id_of(request: web.Request) -> str:
    given = request.headers.get(http_errors.REQUEST_ID_HEADER, "")
    if given and _SAFE_REQUEST_ID.match(given):
        return given
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_id_of(request)
    request[REQUEST_ID] = request_id
    response: web.StreamResponse
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            exc.headers[http_errors.REQUEST_ID_HEADER] = request_id
            raise
        response = http_errors.error_from_http_exception(exc)
    except errors.ServiceError as exc:
        response = http_errors.service_error_response(exc, request_id)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception(
            "unhandled error in %s %s (request %s)", request.method, request.path, request_id
        )
        response = http_errors.internal_error_response(request_id)
    extra = request.get(RESPONSE_HEADERS)
    if extra:
        response.headers.update(extra)
    response.headers[http_errors.REQUEST_ID_HEADER] = request_id
    return response


@web.middleware
async def policy_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    rule = gateway.routes.match(request.path)
    if rule is None:
        return await handler(request)  # health probes, or the router's 404
    if request.method not in rule.methods:
        raise web.HTTPMethodNotAllowed(request.method, rule.methods)

    identity: Identity | None = None
    auth_error: errors.Unauthenticated | None = None
    # Routes without auth (/auth/*) ignore tokens: refreshing with an expired
    # token in the header must work, and they count as anonymous.
    if rule.auth != "none":
        try:
            token = bearer_token(request.headers.get("Authorization"))
            if token is not None:
                identity = await gateway.identities.resolve(token, request[REQUEST_ID])
        except errors.Unauthenticated as exc:
            auth_error = exc  # counted against the anonymous budget first

    address = gateway.addresses.resolve(request.remote, request.headers.get("X-Forwarded-For"))
    tier, key = gateway.tiers.pick(identity, address)
    decision = await gateway.limiter.hit(tier, key)
    request[RESPONSE_HEADERS] = decision.headers()
    if not decision.allowed:
        process_metrics().rate_limit_rejected(tier.name)
        return http_errors.error_response(
            http_errors.RATE_LIMITED,
            f"rate limit of {tier.limit} requests per {int(tier.window)}s exceeded",
            {"tier": tier.name},
        )
    if auth_error is not None:
        raise auth_error
    if rule.auth == "required" and identity is None:
        raise errors.Unauthenticated("a valid bearer token is required")
    if identity is not None:
        request[IDENTITY] = identity
    return await handler(request)
