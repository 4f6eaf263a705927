"""Debian's Chromium through Playwright, for the tests that walk the customer area as its owner."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from scriptmail.store import accounts
from scriptmail.store.engine import for_writing
from tests.support.gateway import HOSTING, RunningGateway

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"  # owner@shop.example's, who owns HOSTING


def owner_chromium(gateway: RunningGateway, database_url: str) -> Iterator:
    """A launched Chromium, with owner@shop.example added as HOSTING's owner; a fixture's body.
    A browser walk runs once, on SQLite: the store behind the pages is tested on both elsewhere."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not database_url.startswith("sqlite"):
        pytest.skip("the browser walk runs once, on SQLite")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with for_writing(gateway.engine).begin() as connection:
        user = accounts.add_user(connection, "owner@shop.example", PASSWORD)
        accounts.grant(connection, user, HOSTING)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def log_in(page, base: str, email: str = "owner@shop.example") -> None:
    """Fill and send the login form the page shows, and wait for My hostings."""
    page.fill("#login-email", email)
    page.fill("#login-password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/hostings")
