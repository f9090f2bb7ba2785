"""The seller desk (products, stock, ledger, analytics) and the operator
console (a poisoned dead letter, redriven), each logged in through the UI."""

from __future__ import annotations

import json
import re
import uuid

import boto3
import pytest

from ec_recommend.platform.events.topology import load_topology
from tests.browser.conftest import Browsing, Screens
from tests.e2e.conftest import RunningSystem

# Without the browser extra (pip install -e ".[browser]") these are skipped, saying so.
expect = pytest.importorskip("playwright.sync_api").expect


def test_a_seller_creates_edits_and_restocks_a_product(
    browsing: Browsing, screens: Screens
) -> None:
    seller = browsing.page()
    browsing.login(seller, "seller@example.com")
    expect(seller).to_have_url(re.compile(r"/seller"))
    expect(seller.get_by_role("heading", name="Your products")).to_be_visible()
    screens.take(seller, "seller-products")

    name = f"テスト商品 {uuid.uuid4().hex[:6]}"
    seller.get_by_role("link", name="+ New product").click()
    seller.get_by_label("Name").fill(name)
    seller.get_by_label("Price (¥)", exact=True).fill("2500")
    seller.get_by_label("Stock").fill("3")
    screens.take(seller, "seller-new-product")
    seller.get_by_role("button", name="Create").click()
    expect(seller.locator("#notice")).to_contain_text(f"Saved {name}")

    seller.goto("/seller#/products?status=active")
    row = seller.locator("tr", has_text=name)
    row.get_by_role("link", name="Edit").click()
    seller.get_by_label("Sale price (¥, optional)").fill("1999")
    seller.get_by_role("button", name="Save").click()
    expect(seller.locator("#notice")).to_contain_text(f"Saved {name}")

    row = seller.locator("tr", has_text=name)
    expect(row.locator(".price strong")).to_have_text("￥1,999")
    row.get_by_label(f"Stock of {name}").fill("77")
    row.get_by_role("button", name="Set stock").click()
    expect(seller.locator("#notice")).to_contain_text("77 available")

    # What a shopper sees: the new stock and the sale price.
    shopper = browsing.page()
    shopper.goto("/#/")
    shopper.get_by_label("Search products").fill(name)
    shopper.get_by_label("Search products").press("Enter")
    shopper.get_by_role("link", name=name).click()
    expect(shopper.locator(".details .stock")).to_have_text("77 in stock")

    seller.get_by_role("link", name="Ledger").click()
    expect(seller.get_by_text("Balance:")).to_be_visible()
    seller.get_by_role("link", name="Analytics").click()
    expect(seller.locator("tr", has_text=name)).to_contain_text("0.0 %")


def _poison(shop: RunningSystem, queue: str) -> None:
    """One message no subscriber can read, straight into ``queue``'s DLQ."""
    sqs = boto3.client(
        "sqs",
        region_name=shop.endpoints["region"],
        endpoint_url=shop.endpoints["aws_endpoint_url"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    url = sqs.get_queue_url(QueueName=load_topology().queue(queue).dlq)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"poisoned": True}))


def test_an_operator_sees_a_poisoned_dead_letter_and_redrives_it(
    browsing: Browsing, screens: Screens, shop: RunningSystem
) -> None:
    queue = "seller-event-queue"
    _poison(shop, queue)
    operator = browsing.page()
    browsing.login(operator, "admin@example.com")
    expect(operator).to_have_url(re.compile(r"/console"))
    expect(operator.get_by_role("heading", name="Operator console")).to_be_visible()
    row = operator.locator(f"tr[data-queue='{queue}']")
    expect(row.locator("td[data-dlq]")).to_have_text("1")
    expect(operator.get_by_role("table", name="Services").locator("tbody tr")).to_have_count(8)
    expect(operator.locator("figure.chart-box")).to_have_count(2)
    # Sampled every 2 s: a refresh or two later the chart has a line to show.
    expect(operator.locator("figure.chart-box").first).not_to_contain_text("last 0 s")
    screens.take(operator, "console", full_page=True)

    row.get_by_role("button", name=re.compile("^Redrive")).click()
    expect(operator.locator("#notice")).to_contain_text(f"Moved 1 message(s) back to {queue}")
    # Still poisoned: its subscriber rejects it again and it dead-letters again.
    expect(row.locator("td[data-dlq]")).to_have_text("1")

    customer = browsing.page()
    browsing.login(customer, "customer@example.com")
    customer.goto("/console")
    expect(customer.get_by_text("This page is for admin accounts")).to_be_visible()
