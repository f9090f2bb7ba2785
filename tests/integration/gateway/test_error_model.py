"""Every error has the seed's body and an X-Request-ID; bad input is never a 500."""

from __future__ import annotations

import pytest

from tests.integration.gateway.conftest import GatewayUnderTest

pytestmark = pytest.mark.asyncio

auth = GatewayUnderTest.auth


async def _error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status == status, await response.text()
    assert response.headers["X-Request-ID"]
    body = await response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


async def test_unknown_paths_and_methods(gateway: GatewayUnderTest) -> None:
    http = gateway.http
    await _error(await http.get("/nope"), 404, "NOT_FOUND")
    await _error(await http.get("/api/v1/products/x/y/z"), 404, "NOT_FOUND")
    # not in routes.yaml's methods for the prefix
    await _error(await http.patch("/api/v1/products"), 405, "METHOD_NOT_ALLOWED")
    await _error(await http.delete("/api/v1/orders/1"), 405, "METHOD_NOT_ALLOWED")
    # listed for the prefix, but this path has no such operation
    await _error(await http.post("/api/v1/products/abc"), 405, "METHOD_NOT_ALLOWED")
    await _error(await http.get("/auth/login"), 405, "METHOD_NOT_ALLOWED")


async def test_request_id_is_echoed_or_made(gateway: GatewayUnderTest) -> None:
    http = gateway.http
    echoed = await http.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    made = await http.get("/healthz", headers={"X-Request-ID": "bad id\twith junk"})
    assert made.headers["X-Request-ID"] not in ("", "bad id\twith junk")


async def test_invalid_bodies_name_the_field(gateway: GatewayUnderTest) -> None:
    http = gateway.http
    post = lambda body, **kw: http.post(  # noqa: E731
        "/api/v1/products",
        headers=auth("seller-a"),
        **({"data": body} if isinstance(body, (str, bytes)) else {"json": body}),
        **kw,
    )
    await _error(await post("{not json"), 400, "INVALID_REQUEST")
    await _error(await post("[1, 2]"), 400, "INVALID_REQUEST")
    await _error(await post(""), 400, "INVALID_REQUEST")
    base = {"name": "x", "base_price": {"amount": 100}, "stock_quantity": 1}
    cases = {
        "colour": {**base, "colour": "red"},
        "name": {**base, "name": 5},
        "stock_quantity": {**base, "stock_quantity": "many"},
        "base_price.amount": {**base, "base_price": {"amount": -1}},
        "base_price.currency": {**base, "base_price": {"amount": 1, "currency": "USD"}},
        "images[0].url": {**base, "images": [{"url": 7}]},
        "images[0].size": {**base, "images": [{"url": "https://x.example/a.png", "size": 1}]},
    }
    for field_name, body in cases.items():
        error = await _error(await post(body), 400, "INVALID_REQUEST")
        assert error["details"]["field"] == field_name, (field_name, error)
    # a valid shape with an invalid value is the service's 400, still naming the field
    error = await _error(await post({**base, "name": "   "}), 400, "INVALID_REQUEST")
    assert error["details"]["field"] == "name"


async def test_body_size_is_limited(gateway: GatewayUnderTest) -> None:
    big = {
        "name": "x",
        "description": "d" * 300_000,
        "base_price": {"amount": 1},
        "stock_quantity": 1,
    }
    response = await gateway.http.post("/api/v1/products", json=big, headers=auth("seller-a"))
    await _error(response, 413, "INVALID_REQUEST")


async def test_query_validation(gateway: GatewayUnderTest) -> None:
    http = gateway.http
    error = await _error(await http.get("/api/v1/products?page_size=101"), 400, "INVALID_REQUEST")
    assert error["details"]["field"] == "page_size"
    for query, field_name in (
        ("page=0", "page"),
        ("page=abc", "page"),
        ("sort_by=password", "sort_by"),
        ("descending=maybe", "descending"),
        ("bogus=1", "bogus"),
        ("page=1&page=2", "page"),
    ):
        error = await _error(await http.get(f"/api/v1/products?{query}"), 400, "INVALID_REQUEST")
        assert error["details"]["field"] == field_name
    ok = await http.get("/api/v1/products?page_size=100&sort_by=price&descending=true")
    assert ok.status == 200


async def test_malformed_ids_are_400_not_500(gateway: GatewayUnderTest) -> None:
    http = gateway.http
    await _error(await http.get("/api/v1/products/not-a-uuid"), 400, "INVALID_REQUEST")
    await _error(
        await http.get("/api/v1/products/00000000-0000-0000-0000-000000000000"), 404, "NOT_FOUND"
    )


async def test_bad_tokens_are_401_before_any_service_call(gateway: GatewayUnderTest) -> None:
    http = gateway.http
    before = gateway.clients.stubs
    for headers in (
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer a b"},
        {},
    ):
        response = await http.put(
            "/api/v1/users/me/profile", json={"display_name": "x"}, headers=headers
        )
        await _error(response, 401, "UNAUTHORIZED")
    # an invalid token on an optional route is refused too, not treated as anonymous
    await _error(
        await http.get("/api/v1/products", headers={"Authorization": "Bearer nonsense"}),
        401,
        "UNAUTHORIZED",
    )
    await _error(await http.post("/api/v1/products", json={}), 401, "UNAUTHORIZED")
    assert gateway.clients.stubs == before


async def test_services_down_is_503_without_internals(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.gateway.conftest import gateway_config, running_gateway

    async with running_gateway(gateway_config(tmp_path), services=("product",)) as running:
        # the user service is not running: identity resolution cannot be done
        response = await running.http.get("/api/v1/users/me", headers=auth("alice"))
        body = await _error(response, 503, "SERVICE_UNAVAILABLE")
        assert "127.0.0.1" not in body["message"] and "details" not in body


async def test_a_crash_is_a_500_with_no_internals(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    from ec_recommend.edge.gateway.app import GatewaySetup, create_app
    from tests.integration.gateway.conftest import StaticVerifier, _verifier, gateway_config

    @web.middleware
    async def crash(request, handler):  # type: ignore[no-untyped-def]
        if request.path == "/api/v1/products":
            raise RuntimeError("secret: password=hunter2 at /srv/db")
        return await handler(request)

    from aiohttp.test_utils import TestClient, TestServer

    app = create_app(
        GatewaySetup(config=gateway_config(tmp_path), verifier=lambda: _verifier(StaticVerifier())),
        middlewares=[crash],
    )
    async with TestClient(TestServer(app)) as http:
        response = await http.get("/api/v1/products")
        body = await _error(response, 500, "INTERNAL_ERROR")
        assert "hunter2" not in await response.text()
        assert body["details"]["request_id"] == response.headers["X-Request-ID"]
    errors_logged = [r for r in caplog.records if r.levelname == "ERROR"]
    # the request id is a field of the record, for log search, not only in the text
    assert [getattr(r, "request_id", "") for r in errors_logged] == [body["details"]["request_id"]]


async def test_auth_routes_ignore_tokens_and_count_as_anonymous(gateway: GatewayUnderTest) -> None:
    # an expired token left in the header must not block /auth/refresh or /auth/login
    response = await gateway.http.post(
        "/auth/login",
        json={"email": "a@example.com", "password": "x"},
        headers={"Authorization": "Bearer expired-token"},
    )
    assert response.status == 503  # no accounts configured here, but not a 401
    assert response.headers["RateLimit-Limit"] == "10000"  # the anonymous tier
    assert gateway.verifier.calls == 0
