"""/api/v1/admin: the operator console's routes (routes.yaml: the ``admin`` group only)."""

from __future__ import annotations

from typing import Any

from ec_recommend.edge.gateway.keys import GATEWAY
from ec_recommend.edge.gateway.operations import OPERATIONS, Operations
from ec_recommend.edge.gateway.queues import QueueConsole
from ec_recommend.edge.gateway.request import ApiRequest
from ec_recommend.edge.gateway.routes import Endpoint
from ec_recommend.platform import errors

_INT = {"type": "integer"}
_STR = {"type": "string"}


def _list_of(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "object", "properties": properties}}


OVERVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "services": _list_of({"name": _STR, "serving": {"type": "boolean"}}),
        "circuit_breakers": _list_of(
            {"service": _STR, "state": {"type": "string", "enum": ["closed", "open", "half_open"]}}
        ),
        "outboxes": _list_of(
            {"service": _STR, "backlog": _INT, "oldest_unsent_age_seconds": {"type": "number"}}
        ),
        "rate_limit_rejections": _list_of({"tier": _STR, "count": _INT}),
        "traffic": _list_of(
            {
                "at": {"type": "string", "format": "date-time"},
                "requests_per_second": {"type": "number"},
                "p99_ms": {"type": ["number", "null"]},
            }
        ),
    },
}
QUEUES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": _list_of(
            {
                "name": _STR,
                "dlq": _STR,
                "subscriber": _STR,
                "messages": _INT,
                "messages_in_flight": _INT,
                "dlq_messages": _INT,
            }
        )
    },
}
REDRIVE_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"moved": _INT}}


def _operations(request: ApiRequest) -> Operations:
    return request.http.app[OPERATIONS]


def _queues(request: ApiRequest) -> QueueConsole:
    queues = _operations(request).queues
    if queues is None:
        raise errors.NotFound("events are off in this gateway: it has no queues")
    return queues


async def admin_overview(request: ApiRequest) -> dict[str, Any]:
    return await _operations(request).overview(request.http.app[GATEWAY])


async def admin_queues(request: ApiRequest) -> dict[str, Any]:
    queues = _operations(request).queues
    depths = [] if queues is None else await queues.depths()  # None: events are off
    return {"items": [depth.as_json() for depth in depths]}


async def admin_redrive(request: ApiRequest) -> dict[str, Any]:
    return {"moved": await _queues(request).redrive(request.params["queue"])}


async def admin_purge(request: ApiRequest) -> None:
    await _queues(request).purge(request.params["queue"])


QUEUE = "/api/v1/admin/queues/{queue}"

ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/v1/admin/overview",
        admin_overview,
        "Service health, circuit breakers, outbox backlogs, rate-limit rejections by tier, "
        "and request rate and p99 over the last minutes",
        json_response=OVERVIEW_SCHEMA,
    ),
    Endpoint(
        "GET",
        "/api/v1/admin/queues",
        admin_queues,
        "Each event queue's depth, messages in flight and dead letters",
        json_response=QUEUES_SCHEMA,
    ),
    Endpoint(
        "POST",
        QUEUE + "/redrive",
        admin_redrive,
        "Move every dead letter of a queue back to it",
        json_response=REDRIVE_SCHEMA,
    ),
    Endpoint(
        "POST",
        QUEUE + "/purge",
        admin_purge,
        "Delete every dead letter of a queue",
        status=204,
    ),
)
