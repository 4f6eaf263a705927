"""UTF-8 addresses typed into the areas' forms in a real browser (Chromium through Playwright): a
customer's error-report recipient, an operator's new user, and that user logging in. The browser's
own check lets them through and still stops garbage; the server checks IDNA behind it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from scriptmail.store import accounts
from scriptmail.store.engine import for_writing
from scriptmail.store.schema import hostings, users
from tests.support.browser import PASSWORD, log_in, owner_chromium
from tests.support.gateway import HOSTING, RunningGateway

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser(gateway: RunningGateway, database_url: str):
    yield from owner_chromium(gateway, database_url)


def _valid(page, selector: str) -> bool:
    return page.evaluate(f"document.querySelector({selector!r}).validity.valid")


def test_the_owner_types_a_utf8_report_recipient_and_garbage_is_still_refused(gateway: RunningGateway, browser) -> None:
    base = f"http://localhost:{gateway.gateway.web_port}"
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{base}/login")
    log_in(page, base)
    page.goto(f"{base}/hostings/{HOSTING}")
    page.get_by_role("button", name="Change the recipient").click()
    field = page.locator("dialog#dialog input[name=email]")
    ok = page.locator("dialog#dialog").get_by_role("button", name="OK")
    for garbage in ("not an address", "josé@", "a@b", "a@-b.es", "<x>@b.es"):
        field.fill(garbage)
        ok.click()
        assert _valid(page, "dialog input[name=email]") is False, garbage  # the browser stops it
    # A look-alike passes the browser's coarse look; the server's IDNA check refuses it and keeps the text.
    field.fill("ventas@раypal.es")
    ok.click()
    page.get_by_text("This is not a valid e-mail address.").wait_for()
    assert page.locator("input[name=email]").input_value() == "ventas@раypal.es"

    page.locator("input[name=email]").fill("josé@correo.españa.es")
    page.locator("form.recipient-form").get_by_role("button", name="OK").click()
    page.get_by_text("The error report will go to josé@correo.españa.es.").wait_for()
    playwright.expect(page.locator(".report-to")).to_have_text("josé@correo.españa.es")  # shown in Unicode
    with gateway.engine.connect() as connection:
        stored = connection.execute(select(hostings.c.report_to).where(hostings.c.name == HOSTING)).scalar_one()
    assert stored == "josé@correo.xn--espaa-rta.es"  # one spelling of the domain in the store


def test_an_operator_adds_a_utf8_user_who_then_logs_in_with_the_unicode_address(gateway: RunningGateway, browser) -> None:
    with for_writing(gateway.engine).begin() as connection:
        accounts.add_user(connection, "ops@shop.example", PASSWORD, operator=True)
    base = f"http://localhost:{gateway.gateway.web_port}"
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{base}/login")
    log_in(page, base, "ops@shop.example")
    page.goto(f"{base}/operator/accounts")
    page.locator("#add-email").fill("ñandú@bücher.de")
    page.get_by_role("button", name="Add the user").click()
    secret = page.locator(".op-secret")
    playwright.expect(secret).to_contain_text("ñandú@bücher.de")
    password = secret.locator("code").inner_text().strip()
    with gateway.engine.connect() as connection:
        assert "ñandú@xn--bcher-kva.de" in connection.execute(select(users.c.email)).scalars().all()
    page.locator("form.logout-form").get_by_role("button").click()

    page.goto(f"{base}/login")
    page.fill("#login-email", "ñandú@bücher.de")
    page.fill("#login-password", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/hostings")
