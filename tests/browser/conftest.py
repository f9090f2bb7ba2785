"""Browser tests: headless Chromium (Debian's package) driven by Playwright
against a real ``ec-recommend up`` on a free, non-default port.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium``.
Every page a test opens fails the test on a console error or an uncaught
exception. ``screens.take(page, name)`` saves a screenshot as
``<name>.png`` under ``tmp/artefacts/browser/screenshots/``; the README's
come from ``EC_SCREENSHOTS_DIR=docs/screenshots`` (a test run leaves the
committed ones alone). When a test fails, every page it had open is saved
under ``tmp/artefacts/browser/`` (``EC_ARTEFACTS_DIR``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import RunningSystem, fresh_address, up_process

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = Path(os.environ.get("EC_ARTEFACTS_DIR", ROOT / "tmp" / "artefacts")) / "browser"
SCREENSHOTS = Path(os.environ.get("EC_SCREENSHOTS_DIR", ARTEFACTS / "screenshots"))
DEMO_PASSWORD = "Demo-password-1"
TIMEOUT_MS = 15_000
DESKTOP = {"width": 1200, "height": 860}
_FAILED_LOAD = re.compile(r"^Failed to load resource: the server responded with a status of (\d+)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


# Per module, not per session: sync Playwright keeps its event loop running
# while it is started, and the asyncio tests after these need the thread's.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("EC_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium fonts-ipafont-gothic)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # polls until then; no sleeps
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    """One ``ec-recommend up`` for the browser tests (port 0: never the default 8080)."""
    with up_process(tmp_path_factory.mktemp("ec-browser")) as running:
        yield running


@dataclass
class Browsing:
    """The pages of one test; each in its own browser context (its own session)."""

    chromium: Any
    base_url: str
    pages: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)

    def expect_http_error(self, status: int) -> None:
        """The test provokes API answers with ``status`` (a declined card: 402):
        Chromium logs each as a console error, which is then not a problem."""
        self.expected_statuses.add(status)

    def _console(self, page: Any, message: Any) -> None:
        if message.type != "error":
            return
        status = _FAILED_LOAD.search(message.text)
        if status is not None and int(status.group(1)) in self.expected_statuses:
            return
        self.problems.append(f"{page.url}: console {message.type}: {message.text}")

    def page(self, viewport: dict[str, int] | None = None, address: str | None = None) -> Any:
        """A page in a new context, seen by the gateway as coming from ``address``
        (``up`` trusts 127.0.0.1 as a proxy): each its own anonymous budget."""
        context = self.chromium.new_context(
            base_url=self.base_url,
            viewport=viewport or DESKTOP,
            locale="ja-JP",
            extra_http_headers={"X-Forwarded-For": address or fresh_address()},
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self.problems.append(f"{page.url}: {error}"))
        self.pages.append(page)
        return page

    def login(self, page: Any, email: str, password: str = DEMO_PASSWORD) -> None:
        page.goto("/#/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.locator("form.account").get_by_role("button", name="Log in").click()
        page.get_by_role("button", name="Log out").wait_for()

    @staticmethod
    def reload_until(page: Any, selector: str, timeout: float = TIMEOUT_MS / 1000) -> None:
        """Reload ``page`` until ``selector`` matches: for views that show a read
        model once (the ledger), which a subscriber fills in moments later."""
        deadline = time.monotonic() + timeout
        while page.locator(selector).count() == 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"{selector} did not appear within {timeout}s")
            page.wait_for_timeout(250)
            page.reload()
            page.locator("main h1").wait_for()

    def close(self, failed: bool, test_name: str) -> None:
        if failed:
            ARTEFACTS.mkdir(parents=True, exist_ok=True)
            slug = re.sub(r"[^\w.-]+", "_", test_name)
            for index, page in enumerate(self.pages):
                try:
                    page.screenshot(path=ARTEFACTS / f"{slug}-{index}.png", full_page=True)
                except Exception as error:  # a crashed page must not hide the failure
                    print(f"could not save a screenshot of page {index}: {error}")
        for page in self.pages:
            page.context.close()


@pytest.fixture
def browsing(
    chromium: Any, shop: RunningSystem, request: pytest.FixtureRequest
) -> Iterator[Browsing]:
    session = Browsing(chromium, shop.gateway_url)
    try:
        yield session
    finally:
        session.close(request.node.stash.get(_FAILED, True), request.node.name)
    assert session.problems == [], "errors in the browser console"


class Screens:
    @staticmethod
    def take(page: Any, name: str, *, full_page: bool = False) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page)


@pytest.fixture
def screens() -> Screens:
    return Screens()
