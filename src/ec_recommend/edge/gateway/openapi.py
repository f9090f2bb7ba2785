"""OpenAPI 3.1 document generated from the endpoints and message types.

Request schemas are the very objects that validate requests; response
schemas come from the betterproto2 classes the handlers return. Nothing is
kept by hand in a second place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ec_recommend.edge.gateway.http_errors import ERROR_CODES
from ec_recommend.edge.gateway.outcomes import READS
from ec_recommend.edge.gateway.routes import Endpoint, RouteTable
from ec_recommend.edge.gateway.schema import IDEMPOTENCY_KEY
from ec_recommend.edge.gateway.transcode import message_schema

_ERROR_STATUSES: dict[int, str] = {
    400: "Invalid request",
    401: "Missing or invalid token",
    402: "Payment declined",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict with the current state",
    413: "Body too large",
    429: "Rate limited",
    500: "Internal error",
    503: "Service unavailable (Retry-After when the service said when to come back)",
    504: "Timeout",
}
_UNKNOWN_OUTCOME = (
    "Timeout; the write may have been applied (details.outcome: unknown). "
    "details.safe_to_retry: true when the request carried an Idempotency-Key, "
    "and sending it again with that key returns the first result"
)

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "enum": list(ERROR_CODES)},
        "message": {"type": "string"},
        "details": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        name: {"type": "integer"}
        for name in ("total_items", "total_pages", "current_page", "page_size")
    },
}
_RATE_HEADERS = {
    name: {"schema": {"type": "integer"}, "description": text}
    for name, text in (
        ("RateLimit-Limit", "requests allowed in the window"),
        ("RateLimit-Remaining", "requests left in the window"),
        ("RateLimit-Reset", "seconds until the window resets"),
    )
}


def _success_schema(endpoint: Endpoint, components: dict[str, Any]) -> dict[str, Any] | None:
    if endpoint.list_of is not None:
        return {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": message_schema(endpoint.list_of, components)},
                "page": {"$ref": "#/components/schemas/PageResponse"},
            },
        }
    if endpoint.response is not None:
        return message_schema(endpoint.response, components)
    return endpoint.json_response


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": schema.json_schema()}
        for name, schema in endpoint.path_parameters.items()
    ]
    if endpoint.query is not None:
        for name, schema in endpoint.query.fields.items():
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in endpoint.query.required,
                    "schema": schema.json_schema(),
                }
            )
    if endpoint.idempotent:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": IDEMPOTENCY_KEY.json_schema(),
                "description": "the same key with the same body returns the first response",
            }
        )
    return parameters


def _operation(
    endpoint: Endpoint, auth: str, group: str | None, components: dict[str, Any]
) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "OK", "headers": _RATE_HEADERS}
    schema = _success_schema(endpoint, components)
    if schema is not None and endpoint.status != 204:
        success["content"] = {"application/json": {"schema": schema}}
    responses: dict[str, Any] = {str(endpoint.status): success}
    for status, text in _ERROR_STATUSES.items():
        if status == 504 and endpoint.method not in READS:
            text = _UNKNOWN_OUTCOME
        responses[str(status)] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "tags": [endpoint.path.split("/")[3] if endpoint.path.startswith("/api/") else "auth"],
        "parameters": _parameters(endpoint),
        "responses": responses,
    }
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": endpoint.body.json_schema()}},
        }
    if group is not None:
        operation["description"] = f"Only for tokens in the `{group}` group (others: 403)."
    # Rules between two values, which JSON Schema cannot state: {"at_most": [a, b]}
    # means a <= b when both are given (a request breaking one is a 400).
    constraints = [
        *(endpoint.query.constraints("query") if endpoint.query is not None else ()),
        *(endpoint.body.constraints("body") if endpoint.body is not None else ()),
    ]
    if constraints:
        operation["x-constraints"] = constraints
    if auth == "required":
        operation["security"] = [{"bearer": []}]
    elif auth == "optional":
        operation["security"] = [{"bearer": []}, {}]
    return operation


def openapi_document(endpoints: Sequence[Endpoint], table: RouteTable) -> dict[str, Any]:
    """The OpenAPI 3.1 description of ``endpoints`` (auth modes from routes.yaml,
    unless an endpoint declares its own)."""
    components: dict[str, Any] = {"Error": ERROR_SCHEMA, "PageResponse": PAGE_SCHEMA}
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        rule = table.match(endpoint.path)
        auth = endpoint.auth or (rule.auth if rule is not None else "none")
        group = rule.group if rule is not None else None
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(
            endpoint, auth, group, components
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ec-recommend",
            "version": "1",
            "description": "E-commerce REST API. Errors: {code, message, details?}.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
