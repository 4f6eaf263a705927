"""The customer area in a real browser (Chromium through Playwright): the seed's steps, word for
word: log in, open the hosting, block, purge and watch it come back, unblock, change the
recipient, switch language. Screenshots of each page at 360 and 1440 px go to test-artifacts/."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from scriptmail.store import accounts
from scriptmail.store.engine import for_writing
from tests.support.browser import PASSWORD, log_in, owner_chromium
from tests.support.gateway import HOSTING, RunningGateway

ARTIFACTS = Path(os.environ.get("SCRIPTMAIL_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")) / "screenshots"

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser(gateway: RunningGateway, database_url: str):
    yield from owner_chromium(gateway, database_url)


def _shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in (360, 1440):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(150)  # let the new layout paint: a shot taken at once can miss scrolled regions
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        # Nothing may stick out sideways: a phone must not need to scroll the whole page.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), f"{name} overflows at {width} px"
    page.set_viewport_size({"width": 1440, "height": 900})


def _act(page, action: str, ok: str = "OK") -> None:
    """The guide's two clicks: the action's button, then OK in the confirmation dialog."""
    page.locator(f"button[data-action={action.lower()}]").click()
    dialog = page.locator("dialog#dialog")
    playwright.expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=ok).click()


def test_the_owner_controls_the_scripts_mail_in_a_browser(gateway: RunningGateway, browser) -> None:
    base = f"http://localhost:{gateway.gateway.web_port}"
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{base}/login")
    _shoot(page, "login")
    log_in(page, base)
    _shoot(page, "hostings")
    page.get_by_role("link", name=HOSTING).click()
    page.wait_for_url(f"{base}/hostings/{HOSTING}")
    _shoot(page, "hosting-active")
    # Purge is not possible while sending: the button is disabled and says why.
    purge = page.locator("button[data-action=purge]")
    assert purge.is_disabled() and "block" in (purge.get_attribute("title") or "").lower()

    # With the keyboard only: Tab to "Block sending", Enter opens the dialog, Escape closes it.
    block = page.locator("button[data-action=block]")
    block.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#dialog")
    playwright.expect(dialog).to_be_visible()
    playwright.expect(dialog.get_by_role("button", name="OK")).to_be_focused()
    assert "72 hours" in dialog.inner_text()
    _shoot(page, "dialog-block")
    page.keyboard.press("Escape")
    playwright.expect(dialog).to_be_hidden()
    assert page.locator(".badge").first.inner_text().strip().lower() == "enabled"  # nothing happened

    _act(page, "BLOCK")
    page.get_by_text("Sending is blocked.").wait_for()
    assert page.locator(".badge").first.inner_text().strip().lower() == "disabled"
    _shoot(page, "hosting-blocked")

    _act(page, "PURGE")
    page.get_by_text("The purge has started.").wait_for()
    # The page refreshes itself while purging, until the hosting sends again.
    playwright.expect(page.locator(".badge").first).to_have_text(re.compile(r"^\s*enabled\s*$", re.I), timeout=20_000)

    _act(page, "BLOCK")
    page.get_by_text("Sending is blocked.").wait_for()
    _act(page, "UNBLOCK")
    page.get_by_text("Sending is unblocked.").wait_for()

    page.get_by_role("button", name="Change the recipient").click()
    recipient = page.locator("dialog#dialog input[name=email]")
    playwright.expect(recipient).to_be_focused()
    recipient.fill("not an address")
    page.locator("dialog#dialog").get_by_role("button", name="OK").click()
    assert page.evaluate("document.querySelector('dialog input[name=email]').validity.valid") is False
    recipient.fill("errors@shop.example")
    page.locator("dialog#dialog").get_by_role("button", name="OK").click()
    page.get_by_text("The error report will go to errors@shop.example.").wait_for()

    page.select_option("#language-select", "es")
    page.locator("form.language-form").get_by_role("button").click()
    page.get_by_role("button", name=re.compile("Bloquear el envío")).wait_for()
    _shoot(page, "hosting-es")
    assert page.locator("html").get_attribute("lang") == "es"
    # The seed's guide, in its own words: «Bloquear el envío», then «Aceptar»; the state becomes «inactivo».
    page.get_by_role("button", name="Bloquear el envío", exact=True).click()
    page.locator("dialog#dialog").get_by_role("button", name="Aceptar").click()
    playwright.expect(page.locator(".badge").first).to_have_text(re.compile(r"inactivo"))
    page.get_by_role("button", name="Desbloquear el envío", exact=True).click()
    page.locator("dialog#dialog").get_by_role("button", name="Aceptar").click()
    playwright.expect(page.locator(".badge").first).to_have_text(re.compile(r"^\W*activo\s*$"))


def test_every_page_fits_a_phone_and_a_desktop_and_works_with_the_keyboard(gateway: RunningGateway, browser) -> None:
    """The log, a message, held mail, scripts, My account (a token made and revoked) and the
    operator's pages, each shot at 360 and 1440 px without sideways scrolling."""
    from scriptmail.control.states import Action, Actor
    from scriptmail.store.hosting_control import change_state
    from tests.support.gateway import submit, wait_status

    with for_writing(gateway.engine).begin() as connection:
        accounts.add_user(connection, "ops@shop.example", PASSWORD, operator=True)
    submit(gateway.smtp_port, b"Subject: Your order 1234 with a rather long subject line to wrap\r\n\r\nThanks!\r\n", ["client@sink.test"])
    (sent,) = wait_status(gateway.engine, "sent", 1)
    with for_writing(gateway.engine).begin() as connection:
        change_state(connection, HOSTING, Action.BLOCK, Actor.CUSTOMER, time.time())
    submit(gateway.smtp_port, b"Subject: held <b>until</b> purged\r\n\r\nA body that waits.\r\n", ["later@sink.test"])
    wait_status(gateway.engine, "held", 1)

    base = f"http://localhost:{gateway.gateway.web_port}"
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{base}/login")
    # Keyboard only: the first Tab reaches the skip link, and the form is filled and sent without a mouse.
    page.keyboard.press("Tab")
    playwright.expect(page.locator(".skip-link")).to_be_focused()
    page.locator("#login-email").focus()
    page.keyboard.type("owner@shop.example")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/hostings")

    page.goto(f"{base}/hostings/{HOSTING}/log")
    playwright.expect(page.get_by_text("client@sink.test")).to_be_visible()
    _shoot(page, "log")
    page.goto(f"{base}/hostings/{HOSTING}/log/{sent['id']}")
    _shoot(page, "message")
    page.goto(f"{base}/hostings/{HOSTING}/held")
    playwright.expect(page.get_by_text("A body that waits.")).to_be_visible()
    assert page.locator("b", has_text="until").count() == 0  # the subject's markup is text
    _shoot(page, "held")
    page.goto(f"{base}/hostings/{HOSTING}/scripts")
    _shoot(page, "scripts")

    page.goto(f"{base}/account")
    page.fill("#token-label", "monitoring")
    page.get_by_role("button", name="Create a token").click()
    token = page.locator("#new-token-value").input_value()
    assert token.startswith("smk_")
    _shoot(page, "account-token")
    page.goto(f"{base}/account")
    assert token not in page.content()
    page.get_by_role("button", name="Revoke the token monitoring").click()
    page.get_by_text("The token has been revoked").wait_for()
    page.locator("form.logout-form").get_by_role("button").click()

    page.goto(f"{base}/login")
    log_in(page, base, "ops@shop.example")
    for path, name in (("/operator", "operator-hostings"), (f"/operator/hostings/{HOSTING}", "operator-hosting"),
                       ("/operator/queue", "operator-queue"), ("/operator/accounts", "operator-accounts")):  # fmt: skip
        page.goto(f"{base}{path}")
        assert page.locator("h1").count() == 1
        _shoot(page, name)


def test_the_owner_adds_a_sending_domain_and_copies_its_record_in_a_browser(gateway: RunningGateway, browser) -> None:
    base = f"http://localhost:{gateway.gateway.web_port}"
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = context.new_page()
    page.goto(f"{base}/login")
    log_in(page, base)
    page.goto(f"{base}/hostings/{HOSTING}/domains")
    page.fill("#new-domain", "bücher.example")
    page.get_by_role("button", name="Add", exact=True).click()
    page.wait_for_url(f"{base}/hostings/{HOSTING}/domains")
    playwright.expect(page.locator("article.domain h3")).to_contain_text("bücher.example")
    _shoot(page, "sending-domains")
    name = page.locator("input.copyable").first.input_value()
    assert name.endswith("._domainkey.xn--bcher-kva.example")
    copy = page.locator("button.copy").first
    copy.click()
    playwright.expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == name
    page.locator("button.copy").nth(1).click()
    assert page.evaluate("navigator.clipboard.readText()").startswith("v=DKIM1; k=rsa; p=")
    context.close()
