"""The browser front end as the gateway serves it: pages, files, security headers."""

from __future__ import annotations

import pytest

from tests.integration.gateway.conftest import GatewayUnderTest

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("path", ["/", "/seller", "/console"])
async def test_each_page_is_the_app_shell_with_a_strict_policy(
    gateway: GatewayUnderTest, path: str
) -> None:
    response = await gateway.http.get(path)
    assert response.status == 200
    assert response.content_type == "text/html"
    assert '<script type="module" src="/static/app.js">' in await response.text()
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    # Outside routes.yaml: not rate-limited, like the health probes.
    assert "RateLimit-Limit" not in response.headers


async def test_static_files_have_their_types_and_unknown_ones_the_error_body(
    gateway: GatewayUnderTest,
) -> None:
    script = await gateway.http.get("/static/app.js")
    assert script.status == 200
    assert script.content_type == "text/javascript"
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert (await gateway.http.get("/static/style.css")).content_type == "text/css"
    for missing in ("/static/nope.js", "/static/..%2Fsite.py", "/static/"):
        answer = await gateway.http.get(missing)
        assert answer.status == 404, missing
        assert (await answer.json())["code"] == "NOT_FOUND"
    assert (await gateway.http.post("/")).status == 405
