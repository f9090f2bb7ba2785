"""The OpenAPI document is valid and complete; fuzzing every operation finds no 5xx.

The fuzzer reads the served document and, for each operation, generates
path parameters, query strings and bodies from its schemas - mostly the
documented shapes with wrong types, out-of-range values, unknown fields and
junk mixed in - and sends them with and without tokens.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from ec_recommend.config import AuthConfig
from ec_recommend.edge.gateway.handlers import ENDPOINTS
from ec_recommend.platform.auth.cognito import open_accounts
from ec_recommend.platform.auth.provision import provision_user_pool
from ec_recommend.runtime.local_aws import LocalAws
from tests.integration.gateway.conftest import GatewayUnderTest, gateway_config, running_gateway

SERVICES = ("user", "product", "cart", "order", "search", "recommendation", "seller", "analytics")
EXAMPLES_PER_OPERATION = 25

JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def from_schema(schema: dict[str, Any], document: dict[str, Any], depth: int = 0) -> Any:
    """Values of ``schema``'s shape, with junk and edge values mixed in."""
    schema = _resolve(schema, document)
    if depth > 4:
        return JUNK
    if "oneOf" in schema and "type" not in schema:
        return st.one_of([from_schema(s, document, depth + 1) for s in schema["oneOf"]])
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        properties = {
            name: from_schema(prop, document, depth + 1)
            for name, prop in schema["properties"].items()
        }
        shaped = st.fixed_dictionaries({}, optional=properties)
        extra = st.dictionaries(st.text(min_size=1, max_size=10), JUNK, max_size=1)
        base = st.one_of(shaped, st.builds(lambda a, b: {**a, **b}, shaped, extra))
    elif kind == "object":
        base = st.dictionaries(st.text(max_size=10), st.text(max_size=10) | JUNK, max_size=3)
    elif kind == "string":
        choices = [
            st.text(max_size=40),
            st.just(""),
            st.just("\x00"),
            st.text(min_size=300, max_size=400),
        ]
        if "enum" in schema:
            choices.insert(0, st.sampled_from(schema["enum"]))
        base = st.one_of(choices)
    elif kind == "integer":
        low, high = schema.get("minimum", -(2**31)), schema.get("maximum", 2**31)
        base = st.one_of(
            st.integers(low, high), st.sampled_from([low - 1, high + 1, 2**63, -(2**63) - 1])
        )
    elif kind == "boolean":
        base = st.booleans()
    elif kind == "array":
        base = st.lists(from_schema(schema.get("items", {}), document, depth + 1), max_size=3)
    elif kind == "null":
        base = st.none()
    else:
        base = JUNK
    return st.one_of(base, base, base, JUNK)


def query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


@pytest.fixture
def fuzz_target(
    tmp_path: Path, local_aws: LocalAws
) -> Iterator[tuple[asyncio.AbstractEventLoop, GatewayUnderTest, str]]:
    """A gateway with every service and a Cognito pool on moto, on a loop of its own
    (hypothesis drives it synchronously)."""
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    config = gateway_config(tmp_path)
    try:
        pool = loop.run_until_complete(
            provision_user_pool(local_aws, f"fuzz-{uuid.uuid4().hex[:8]}")
        )
        auth = pool.apply(AuthConfig(auto_confirm=True, allow_seller_signup=True))
        gateway = loop.run_until_complete(
            stack.enter_async_context(
                running_gateway(config, services=SERVICES, accounts=lambda: open_accounts(auth))
            )
        )
        created = loop.run_until_complete(
            gateway.http.post(
                "/api/v1/products",
                json={"name": "Fuzz", "base_price": {"amount": 100}, "stock_quantity": 5},
                headers=GatewayUnderTest.auth("seller-a"),
            )
        )
        product_id = loop.run_until_complete(created.json())["id"]
        yield loop, gateway, product_id
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()


def test_openapi_document_is_valid_and_covers_every_endpoint(
    fuzz_target: tuple[asyncio.AbstractEventLoop, GatewayUnderTest, str],
) -> None:
    loop, gateway, _ = fuzz_target
    response = loop.run_until_complete(gateway.http.get("/api/v1/openapi.json"))
    document = loop.run_until_complete(response.json())
    validate(document)
    assert document["openapi"].startswith("3.1")
    served = {(path, method) for path, method, _ in operations(document)}
    assert served == {(e.path, e.method) for e in ENDPOINTS}
    product = document["paths"]["/api/v1/products"]["post"]
    body = product["requestBody"]["content"]["application/json"]["schema"]
    assert body["additionalProperties"] is False
    assert set(body["required"]) == {"name", "base_price", "stock_quantity"}
    assert product["security"] == [{"bearer": []}]
    page_size = next(
        p
        for p in document["paths"]["/api/v1/products"]["get"]["parameters"]
        if p["name"] == "page_size"
    )
    assert page_size["schema"]["maximum"] == 100


def _fuzz_operation(
    loop: asyncio.AbstractEventLoop,
    gateway: GatewayUnderTest,
    method: str,
    path: str,
    path_params: dict[str, Any],
    query_params: dict[str, Any],
    bodies: Any,
    failures: list[str],
) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        params=st.fixed_dictionaries(path_params),
        query=st.fixed_dictionaries({}, optional=query_params),
        body=bodies,
        token=st.sampled_from([None, "alice", "seller-a", "admin", "forged"]),
        idempotency_key=st.none()
        | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=250),
    )
    def fuzz(
        params: dict[str, str],
        query: dict[str, str],
        body: bytes,
        token: str | None,
        idempotency_key: str | None,
    ) -> None:
        url = path
        for name, value in params.items():
            url = url.replace("{" + name + "}", quote(value, safe=""))
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key.encode("utf-8", "replace").decode(
                "latin-1"
            )

        async def send() -> tuple[int, bytes, str]:
            async with gateway.http.request(
                method, url, params=query, data=body or None, headers=headers
            ) as answer:
                return (
                    answer.status,
                    await answer.read(),
                    answer.headers.get("X-Request-ID", ""),
                )

        status, payload, request_id = loop.run_until_complete(send())
        if status >= 500 or not request_id:
            failures.append(f"{method} {url} {query} {body[:200]!r} -> {status} {payload[:200]!r}")
        elif status >= 400:
            error = json.loads(payload)
            assert set(error) <= {"code", "message", "details"} and error["code"], error

    fuzz()


def test_fuzzing_every_operation_finds_no_server_error(
    fuzz_target: tuple[asyncio.AbstractEventLoop, GatewayUnderTest, str],
) -> None:
    loop, gateway, product_id = fuzz_target
    response = loop.run_until_complete(gateway.http.get("/api/v1/openapi.json"))
    document = loop.run_until_complete(response.json())
    failures: list[str] = []

    for path, method, operation in operations(document):
        parameters = operation.get("parameters", [])
        path_params = {
            p["name"]: st.one_of(
                st.just(product_id), st.uuids().map(str), st.text(min_size=1, max_size=30)
            )
            for p in parameters
            if p["in"] == "path"
        }
        query_params = {
            p["name"]: from_schema(p["schema"], document).map(query_text)
            for p in parameters
            if p["in"] == "query"
        }
        body_schema = (
            operation.get("requestBody", {})
            .get("content", {})
            .get("application/json", {})
            .get("schema")
        )
        bodies = (
            st.one_of(
                from_schema(body_schema, document).map(lambda v: json.dumps(v).encode()),
                st.binary(max_size=50),
            )
            if body_schema
            else st.just(b"")
        )

        _fuzz_operation(loop, gateway, method, path, path_params, query_params, bodies, failures)
    assert not failures, "\n".join(failures[:20])
