"""Products and users through the gateway, against real services."""

from __future__ import annotations

import pytest

from tests.integration.gateway.conftest import GatewayUnderTest

pytestmark = pytest.mark.asyncio

auth = GatewayUnderTest.auth

NEW_PRODUCT = {
    "name": "Kettle",
    "description": "A gooseneck kettle",
    "base_price": {"amount": 4280, "currency": "JPY"},
    "stock_quantity": 5,
    "images": [{"url": "https://images.example.com/kettle.jpg", "alt_text": "kettle"}],
}


async def test_seller_manages_products_and_others_cannot(gateway: GatewayUnderTest) -> None:
    http = gateway.http
    created = await http.post("/api/v1/products", json=NEW_PRODUCT, headers=auth("seller-a"))
    assert created.status == 201, await created.text()
    product = await created.json()
    assert product["seller_id"] == "seller-a"
    assert product["status"] == "active"
    assert product["base_price"] == {"amount": 4280, "currency": "JPY"}
    assert product["created_at"].endswith("Z")
    path = f"/api/v1/products/{product['id']}"

    # PUT changes only the fields it carries
    updated = await http.put(
        path, json={"name": "Kettle 2", "sale_price": {"amount": 3980}}, headers=auth("seller-a")
    )
    assert updated.status == 200
    body = await updated.json()
    assert (body["name"], body["description"]) == ("Kettle 2", "A gooseneck kettle")
    assert body["sale_price"]["amount"] == 3980
    cleared = await (
        await http.put(path, json={"sale_price": None}, headers=auth("seller-a"))
    ).json()
    assert cleared["sale_price"] is None

    listed = await (await http.get("/api/v1/products", params={"seller_id": "seller-a"})).json()
    assert [p["id"] for p in listed["items"]] == [product["id"]]
    assert listed["page"] == {
        "total_items": 1,
        "total_pages": 1,
        "current_page": 1,
        "page_size": 20,
    }

    for method, url, payload in (
        ("PUT", path, {"name": "stolen"}),
        ("DELETE", path, None),
        ("PUT", path + "/stock", {"delta": 5}),
        ("GET", path + "/stock", None),
    ):
        denied = await http.request(method, url, json=payload, headers=auth("seller-b"))
        assert denied.status == 403, (method, url)
        assert (await denied.json())["code"] == "FORBIDDEN"
    customer = await http.post("/api/v1/products", json=NEW_PRODUCT, headers=auth("alice"))
    assert customer.status == 403

    stock = await http.put(path + "/stock", json={"delta": 3}, headers=auth("seller-a"))
    assert await stock.json() == {
        "product_id": product["id"],
        "available_stock": 8,
        "reserved_stock": 0,
    }
    stock = await http.put(path + "/stock", json={"quantity": 2}, headers=auth("seller-a"))
    assert (await stock.json())["available_stock"] == 2
    both = await http.put(
        path + "/stock", json={"quantity": 2, "delta": 1}, headers=auth("seller-a")
    )
    assert both.status == 400

    archived = await http.delete(path, headers=auth("seller-a"))
    assert archived.status == 204
    anonymous = await http.get(path)
    assert anonymous.status == 200
    assert (await anonymous.json())["status"] == "archived"
    default_list = await (
        await http.get("/api/v1/products", params={"seller_id": "seller-a"})
    ).json()
    assert default_list["items"] == []


async def test_reviews_need_a_user_and_are_listed_for_anyone(gateway: GatewayUnderTest) -> None:
    http = gateway.http
    product = await (
        await http.post("/api/v1/products", json=NEW_PRODUCT, headers=auth("seller-a"))
    ).json()
    url = f"/api/v1/products/{product['id']}/reviews"
    assert (await http.post(url, json={"rating": 5})).status == 401
    assert (await http.post(url, json={"rating": 6}, headers=auth("alice"))).status == 400
    review = await http.post(url, json={"rating": 4, "comment": "good"}, headers=auth("alice"))
    assert review.status == 201
    listed = await (await http.get(url)).json()
    assert [(r["rating"], r["comment"]) for r in listed["items"]] == [(4, "good")]


async def test_user_profile_round_trip_and_privacy(gateway: GatewayUnderTest) -> None:
    http = gateway.http
    me = await (await http.get("/api/v1/users/me", headers=auth("alice"))).json()
    assert me["email"] == "alice@example.com"
    assert me["cognito_user_id"] == "sub-alice"

    changed = await http.put(
        "/api/v1/users/me/profile",
        json={"display_name": "Alice", "preferences": {"lang": "ja"}},
        headers=auth("alice"),
    )
    assert changed.status == 200
    profile = await (await http.get("/api/v1/users/me/profile", headers=auth("alice"))).json()
    assert profile == {
        "user_id": me["id"],
        "display_name": "Alice",
        "avatar_url": "",
        "preferences": {"lang": "ja"},
    }
    phone = await http.put(
        "/api/v1/users/me", json={"phone_number": "+819012345678"}, headers=auth("alice")
    )
    assert (await phone.json())["phone_number"] == "+819012345678"

    assert (await http.get(f"/api/v1/users/{me['id']}", headers=auth("alice"))).status == 200
    other = await http.get(f"/api/v1/users/{me['id']}", headers=auth("bob"))
    assert other.status == 404
    assert (await other.json())["code"] == "NOT_FOUND"
    assert (await http.get(f"/api/v1/users/{me['id']}", headers=auth("admin"))).status == 200
    assert (await http.get("/api/v1/users/me")).status == 401


async def test_deactivated_account_tokens_stop_working(gateway: GatewayUnderTest) -> None:
    http = gateway.http
    assert (await http.get("/api/v1/users/me", headers=auth("bob"))).status == 200
    assert (await http.delete("/api/v1/users/me", headers=auth("bob"))).status == 204
    after = await http.get("/api/v1/users/me", headers=auth("bob"))
    assert after.status == 401
    assert (await after.json())["code"] == "UNAUTHORIZED"


async def test_a_sale_price_above_the_stored_base_price_is_a_conflict(
    gateway: GatewayUnderTest,
) -> None:
    http = gateway.http
    created = await http.post("/api/v1/products", json=NEW_PRODUCT, headers=auth("seller-a"))
    path = f"/api/v1/products/{(await created.json())['id']}"
    # well-formed, but at odds with the stored base price (4280): 409, not 400
    above = await http.put(path, json={"sale_price": {"amount": 5000}}, headers=auth("seller-a"))
    assert above.status == 409, await above.text()
    # both in one body: the request contradicts itself, 400 naming the field
    both = {"base_price": {"amount": 100}, "sale_price": {"amount": 200}}
    contradiction = await http.put(path, json=both, headers=auth("seller-a"))
    assert contradiction.status == 400
    assert (await contradiction.json())["details"]["field"] == "sale_price.amount"
