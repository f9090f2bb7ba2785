"""routes.yaml: the seed's shape, validated; longest prefix wins."""

from __future__ import annotations

import pytest

from ec_recommend.edge.gateway.handlers import ENDPOINTS
from ec_recommend.edge.gateway.routes import RoutesError, load_routes, parse_routes


def test_packaged_routes_cover_every_endpoint_with_its_method() -> None:
    table = load_routes()
    for endpoint in ENDPOINTS:
        rule = table.match(endpoint.path)
        assert rule is not None, endpoint.path
        assert endpoint.method in rule.methods, (endpoint.method, endpoint.path)
    users = table.match("/api/v1/users/me")
    assert users is not None and users.auth == "required" and users.service == "user-service"
    assert table.match("/api/v1/orders") is not None  # the prefix itself matches
    assert table.match("/api/v1/ordersx") is None
    assert table.match("/healthz") is None


def test_longest_prefix_wins() -> None:
    table = parse_routes(
        {
            "routes": [
                {"path": "/api/*", "service": "a", "methods": ["GET"]},
                {"path": "/api/v1/x/*", "service": "b", "methods": ["post"], "auth": "required"},
            ]
        }
    )
    rule = table.match("/api/v1/x/1")
    assert rule is not None and rule.service == "b" and rule.methods == {"POST"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "routes"),
        ({"routes": ["x"]}, "routes[0]"),
        ({"routes": [{"path": "api", "methods": ["GET"]}]}, "routes[0].path"),
        ({"routes": [{"path": "/a", "methods": []}]}, "routes[0].methods"),
        ({"routes": [{"path": "/a", "methods": ["FETCH"]}]}, "routes[0].methods"),
        ({"routes": [{"path": "/a", "methods": ["GET"], "auth": "maybe"}]}, "routes[0].auth"),
        # a group needs a token to read it from
        ({"routes": [{"path": "/a", "methods": ["GET"], "group": "admin"}]}, "routes[0].group"),
        (
            {"routes": [{"path": "/a", "methods": ["GET"], "auth": "required", "group": 1}]},
            "routes[0].group",
        ),
    ],
)
def test_invalid_routes_name_the_entry(document: object, message: str) -> None:
    with pytest.raises(RoutesError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_routes(document)


def test_the_console_routes_need_their_group() -> None:
    table = load_routes()
    admin, seller = table.match("/api/v1/admin/queues"), table.match("/api/v1/sellers/me/ledger")
    assert admin is not None and (admin.auth, admin.group) == ("required", "admin")
    assert seller is not None and (seller.auth, seller.group) == ("required", "seller")
    products = table.match("/api/v1/products")
    assert products is not None and products.group is None
