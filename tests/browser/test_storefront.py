"""A shopper signs up, searches in Japanese, buys two products, is declined,
pays, and watches the order move live while a seller ships it elsewhere."""

from __future__ import annotations

import contextlib
import re
import urllib.error
import urllib.request
import uuid

import pytest

from tests.browser.conftest import Browsing, Screens
from tests.e2e.conftest import RunningSystem, fresh_address

# Without the browser extra (pip install -e ".[browser]") these are skipped, saying so.
expect = pytest.importorskip("playwright.sync_api").expect

PASSWORD = "Passw0rd-browser"


def test_a_shopper_checks_out_and_follows_the_order_live(
    browsing: Browsing, screens: Screens
) -> None:
    shopper = browsing.page()
    shopper.goto("/")
    expect(shopper.get_by_role("heading", name="All products")).to_be_visible()
    expect(shopper.locator("ul[aria-label='All products'] li.card")).to_have_count(12)
    screens.take(shopper, "storefront")

    email = f"shopper-{uuid.uuid4().hex[:10]}@example.com"
    shopper.get_by_role("link", name="Sign up").click()
    shopper.get_by_label("Name").fill("ブラウザ 太郎")
    shopper.get_by_label("Email").fill(email)
    shopper.get_by_label(re.compile("^Password")).fill(PASSWORD)
    shopper.locator("form.account").get_by_role("button", name="Sign up").click()
    expect(shopper.get_by_text(email)).to_be_visible()
    expect(shopper.get_by_role("heading", name="For you")).to_be_visible()

    shopper.get_by_label("Search products").fill("イヤホン")
    shopper.get_by_label("Search products").press("Enter")
    results = shopper.locator("ul[aria-label='Results'] li.card")
    expect(results.first).to_contain_text("イヤホン")
    screens.take(shopper, "search")
    names = [n for n in results.locator(".name").all_inner_texts() if "イヤホン" in n][:2]
    assert len(names) == 2, names

    for name in names:
        shopper.get_by_role("link", name=name).first.click()
        expect(shopper.get_by_role("heading", level=1)).to_have_text(name)
        shopper.get_by_role("button", name="Add to cart").click()
        expect(shopper.locator("#notice")).to_contain_text("Added to your cart")
        if name == names[0]:
            reviews = shopper.get_by_role("heading", name=re.compile(r"^Reviews \("))
            expect(reviews).to_be_visible()  # shown once the recommendations are in
            screens.take(shopper, "product")
        shopper.go_back()

    shopper.get_by_role("link", name="Cart").click()
    expect(shopper.locator("table.lines tbody tr")).to_have_count(2)
    quantity = shopper.get_by_label(f"Quantity of {names[1]}")
    quantity.fill("2")
    quantity.press("Enter")  # change event: PUT the new quantity
    expect(shopper.get_by_label(f"Quantity of {names[1]}")).to_have_value("2")
    screens.take(shopper, "cart")
    shopper.get_by_role("button", name="Checkout").click()

    expect(shopper.get_by_role("heading", name=re.compile("^Order "))).to_be_visible()
    order_id = shopper.url.rsplit("/", 1)[1]
    expect(shopper.locator("#order-status")).to_have_text("PENDING_PAYMENT")
    expect(shopper.locator(".live")).to_have_text("● live")
    shopper.evaluate("window.stillTheSamePage = true")

    browsing.expect_http_error(402)
    shopper.get_by_label("Card (sandbox)").select_option("tok_chargeDeclined")
    shopper.get_by_role("button", name=re.compile("^Pay ")).click()
    expect(shopper.get_by_role("alert")).to_contain_text("declined")
    expect(shopper.locator("#order-status")).to_have_text("PENDING_PAYMENT")

    shopper.get_by_label("Card (sandbox)").select_option("tok_visa")
    shopper.get_by_role("button", name=re.compile("^Pay ")).click()
    expect(shopper.locator("#order-status")).to_have_text("PAID")
    screens.take(shopper, "order")

    seller = browsing.page()
    browsing.login(seller, "seller@example.com")
    seller.goto("/seller#/orders?status=PAID")
    row = seller.locator(f"li[data-order='{order_id}']")
    row.get_by_role("button", name="Mark shipped").click()
    expect(seller.locator("#notice")).to_contain_text("SHIPPED")
    screens.take(seller, "seller-orders")
    expect(shopper.locator("#order-status")).to_have_text("SHIPPED")

    seller.goto("/seller#/orders?status=SHIPPED")
    seller.locator(f"li[data-order='{order_id}']").get_by_role(
        "button", name="Mark delivered"
    ).click()
    expect(shopper.locator("#order-status")).to_have_text("DELIVERED")
    assert shopper.evaluate("window.stillTheSamePage") is True  # pushed, not reloaded

    # The seller subscriber books the sale moments after the payment.
    seller.goto("/seller#/ledger")
    browsing.reload_until(seller, "table.lines tbody tr")
    expect(seller.locator("table.lines tbody tr").first).to_contain_text("sale")
    screens.take(seller, "seller-ledger")
    seller.goto("/seller#/analytics")
    expect(seller.locator("table.lines tbody tr").first).to_be_visible()
    screens.take(seller, "seller-analytics")

    shopper.get_by_role("link", name="Orders").click()
    expect(shopper.locator("ul.orders li").first).to_contain_text("DELIVERED")
    screens.take(shopper, "orders")

    # A token that no longer verifies (as after it expires) is renewed on the fly.
    browsing.expect_http_error(401)
    shopper.evaluate(
        """() => {
            const session = JSON.parse(sessionStorage.getItem("ec-session"));
            session.id_token = session.id_token.slice(0, -6) + "AAAAAA";
            sessionStorage.setItem("ec-session", JSON.stringify(session));
        }"""
    )
    shopper.reload()  # the page reads its session from sessionStorage again
    expect(shopper.locator("ul.orders li").first).to_contain_text("DELIVERED")
    shopper.get_by_role("link", name="Cart").click()
    expect(shopper.get_by_role("heading", name="Your cart")).to_be_visible()
    expect(shopper.get_by_text("Your cart is empty.")).to_be_visible()
    assert "AAAAAA" not in shopper.evaluate("sessionStorage.getItem('ec-session')")

    shopper.get_by_role("button", name="Log out").click()
    expect(shopper.get_by_role("link", name="Log in")).to_be_visible()
    assert shopper.evaluate("sessionStorage.length") == 0


def test_a_rate_limited_shopper_is_told_when_to_try_again(
    browsing: Browsing, shop: RunningSystem
) -> None:
    address = fresh_address()
    limit = 100  # the anonymous tier's default per minute
    for _ in range(limit):
        request = urllib.request.Request(
            f"{shop.gateway_url}/api/v1/products?page_size=1",
            headers={"X-Forwarded-For": address},
        )
        with contextlib.suppress(urllib.error.HTTPError), urllib.request.urlopen(request):
            pass
    browsing.expect_http_error(429)
    page = browsing.page(address=address)
    page.goto("/")
    expect(page.get_by_role("alert").first).to_have_text(
        re.compile(r"^Too many requests: try again in \d+ s\.$")
    )
