"""A seller's catalogue and a customer's account, over HTTP against ``ec-recommend up``."""

from __future__ import annotations

import pytest

from ec_recommend import client as api
from tests.e2e.conftest import PASSWORD, System

pytestmark = pytest.mark.asyncio


async def test_seller_catalogue_lifecycle(system: System) -> None:
    seller = await system.seller()
    other_seller = await system.seller()
    anonymous = system.anonymous()

    created = await seller.create_product(
        "Hand grinder",
        3980,
        12,
        description="ceramic burrs",
        images=[{"url": "https://images.example.com/grinder.jpg", "alt_text": "grinder"}],
    )
    assert created["status"] == "active"
    product_id = created["id"]
    seller_id = created["seller_id"]
    assert seller_id

    updated = await seller.update_product(
        product_id, name="Hand grinder II", sale_price={"amount": 3480}
    )
    assert updated["name"] == "Hand grinder II"
    assert updated["description"] == "ceramic burrs"  # untouched fields stay
    assert updated["sale_price"]["amount"] == 3480

    mine = await seller.list_products(seller_id=seller_id)
    assert [p["id"] for p in mine.items] == [product_id]
    assert mine.total_items == 1

    with pytest.raises(api.Forbidden):
        await other_seller.update_product(product_id, name="mine now")
    with pytest.raises(api.Forbidden):
        await other_seller.archive_product(product_id)
    with pytest.raises(api.Unauthorized):
        await anonymous.create_product("nope", 100, 1)

    # anonymous reads
    assert (await anonymous.get_product(product_id))["name"] == "Hand grinder II"
    listed = await anonymous.list_products(seller_id=seller_id)
    assert listed.total_items == 1

    stock = await seller.update_stock(product_id, delta=3)
    assert stock == {"product_id": product_id, "available_stock": 15, "reserved_stock": 0}

    await seller.archive_product(product_id)
    assert (await anonymous.get_product(product_id))["status"] == "archived"
    assert (await anonymous.list_products(seller_id=seller_id)).total_items == 0
    assert (await anonymous.list_products(seller_id=seller_id, status="archived")).total_items == 1


async def test_customer_profile_round_trip_and_privacy(system: System) -> None:
    alice = await system.customer()
    bob = await system.customer()
    me = await alice.me()
    assert me["email"].startswith("customer-")

    await alice.update_profile(display_name="Alice", preferences={"lang": "ja", "size": "M"})
    await alice.update_profile(preferences={"size": ""})  # "" removes a key
    profile = await alice.profile()
    assert profile["user_id"] == me["id"]
    assert profile["display_name"] == "Alice"
    assert profile["preferences"] == {"lang": "ja"}

    assert (await alice.get_user(me["id"]))["id"] == me["id"]
    with pytest.raises(api.NotFound):
        await bob.get_user(me["id"])
    admin = await system.admin()
    assert (await admin.get_user(me["id"]))["email"] == me["email"]


async def test_login_failures_and_deactivation(system: System) -> None:
    anonymous = system.anonymous()
    with pytest.raises(api.Unauthorized):
        await anonymous.login("nobody@example.com", PASSWORD)
    carol = await system.customer()
    email = (await carol.me())["email"]
    with pytest.raises(api.Unauthorized):
        await system.anonymous().login(email, "Wrong-password-1")
    refreshed = await carol.refresh()
    assert refreshed.token_type == "Bearer"
    assert (await carol.me())["email"] == email

    await carol.deactivate()
    with pytest.raises(api.Unauthorized):
        await carol.me()  # earlier tokens stop working
    with pytest.raises(api.Unauthorized):
        await system.anonymous().login(email, PASSWORD)


async def test_signup_rejects_bad_input(system: System) -> None:
    anonymous = system.anonymous()
    for payload, field_name in (
        ({"email": "x@example.com"}, "password"),
        ({"email": "x@example.com", "password": PASSWORD, "role": "admin"}, "role"),
        ({"email": 5, "password": PASSWORD}, "email"),
        ({"email": "x@example.com", "password": PASSWORD, "extra": 1}, "extra"),
    ):
        with pytest.raises(api.InvalidRequest) as caught:
            await anonymous.request("POST", "/auth/signup", json=payload)
        assert caught.value.details["field"] == field_name
    email = "dup-user@example.com"
    await anonymous.signup(email, PASSWORD)
    with pytest.raises(api.Conflict):
        await anonymous.signup(email, PASSWORD)


async def test_demo_data_is_there_and_errors_have_the_seed_shape(system: System) -> None:
    anonymous = system.anonymous()
    demo = await anonymous.list_products(seller_id="seller-demo", page_size=100)
    assert demo.total_items >= 30
    response = await anonymous.request("GET", "/api/v1/nothing-here", check=False)
    assert response.status == 404
    assert response.body["code"] == "NOT_FOUND"
    assert response.headers["X-Request-ID"]
    response = await anonymous.request("PATCH", "/api/v1/products", check=False)
    assert (response.status, response.body["code"]) == (405, "METHOD_NOT_ALLOWED")
    with pytest.raises(api.InvalidRequest) as caught:
        await anonymous.list_products(page_size=101)
    assert caught.value.details["field"] == "page_size"
