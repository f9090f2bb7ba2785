"""Every page at phone width and by keyboard, and what the pages are served with."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import Browsing, Screens

# Without the browser extra (pip install -e ".[browser]") these are skipped, saying so.
expect = pytest.importorskip("playwright.sync_api").expect

PHONE = {"width": 390, "height": 844}


def _fits(page: object) -> bool:
    return bool(
        page.evaluate(  # type: ignore[attr-defined]
            "document.documentElement.scrollWidth <= window.innerWidth"
        )
    )


@pytest.mark.parametrize(
    ("path", "ready"),
    [
        ("/#/", "All products"),
        ("/#/search?q=%E3%82%B3%E3%83%BC%E3%83%92%E3%83%BC", "Search"),  # コーヒー
        ("/#/login", "Log in"),
        ("/#/signup", "Sign up"),
        ("/seller#/", "Seller desk"),
        ("/console#/", "Operator console"),
    ],
)
def test_pages_fit_a_phone_and_load_cleanly(browsing: Browsing, path: str, ready: str) -> None:
    page = browsing.page(PHONE)
    response = page.goto(path)
    assert response is not None
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    expect(page.get_by_role("heading", name=ready).first).to_be_visible()
    assert _fits(page), f"{path} scrolls sideways at {PHONE['width']} px"


def test_the_storefront_works_from_the_keyboard(browsing: Browsing, screens: Screens) -> None:
    page = browsing.page(PHONE)
    page.goto("/#/")
    expect(page.get_by_role("heading", name="All products")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Search products").focus()
    page.keyboard.type("抹茶")
    page.keyboard.press("Enter")
    result = page.locator("ul[aria-label='Results'] a.card-link").first
    expect(result).to_contain_text("抹茶")
    result.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("抹茶")
    expect(page.get_by_role("heading", name=re.compile(r"^Reviews \("))).to_be_visible()
    assert _fits(page)
    screens.take(page, "product-phone")
