"""The test send in a real browser (Chromium through Playwright): the owner opens "Send a test
message" from the hosting's page, sends one to the sink, and watches the result change by itself
(htmx polling) until the receiving server's answer shows; at 360 px nothing sticks out sideways."""

from __future__ import annotations

import pytest

from tests.support.browser import log_in, owner_chromium
from tests.support.gateway import HOSTING, RunningGateway
from tests.support.sink import Behaviour, Sink

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser(gateway: RunningGateway, database_url: str):
    yield from owner_chromium(gateway, database_url)


def test_the_owner_sends_a_test_message_and_sees_the_answer_arrive(gateway: RunningGateway, sink: Sink, browser) -> None:
    # The sink answers after a moment, so the page is seen waiting first and then changing by itself.
    sink.behaviour = Behaviour(delay=1.5)
    base = f"http://localhost:{gateway.gateway.web_port}"
    page = browser.new_page(viewport={"width": 360, "height": 800})
    page.goto(f"{base}/login")
    log_in(page, base)
    page.goto(f"{base}/hostings/{HOSTING}")
    page.get_by_role("link", name="Send a test message").click()
    page.wait_for_url(f"{base}/hostings/{HOSTING}/test-send")
    page.fill("#test-to", "me@sink.test")
    page.get_by_role("button", name="Send the test message").click()
    page.wait_for_url(f"{base}/hostings/{HOSTING}/test-send/*")
    result = page.locator("#test-result")
    playwright.expect(result).to_contain_text("Accepted by the receiving server", timeout=20_000)
    playwright.expect(result).to_contain_text("250 2.0.0 accepted by sink")
    playwright.expect(result).to_contain_text("Not signed")
    assert result.get_attribute("hx-trigger") is None  # final: it stopped asking
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "the result overflows at 360 px"
    assert len(sink.messages) == 1 and sink.messages[0].recipients == ["me@sink.test"]
