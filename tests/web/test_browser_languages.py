"""The new languages in a real browser (Chromium through Playwright): an owner and an operator switch
to German, Italian, Portuguese and Polish with the language switch, and every main page of both
areas fits a 360 px phone without sideways scrolling and without a button or label cut short,
however long the words. Screenshots go to test-artifacts/screenshots/LANG-PAGE-360.png."""

from __future__ import annotations

import time

import pytest

from scriptmail.control.states import Action, Actor
from scriptmail.store import accounts, audit
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state
from tests.support.browser import PASSWORD, log_in
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.web.test_browser import ARTIFACTS, browser, playwright  # noqa: F401 (the fixture)

# The block button of each language: the switch has worked when it shows.
BLOCK = {"de": "Versand sperren", "it": "Blocca l'invio", "pt": "Bloquear o envio", "pl": "Zablokuj wysyłkę"}

# Whatever sticks out of its own box: the page wider than the phone, or a control, badge, heading,
# label or table cell whose text is wider than the room it has (cut off, or spilling over the next).
_OVERFLOWS = """() => {
  const found = [];
  if (document.documentElement.scrollWidth > window.innerWidth + 1) found.push('page: ' + document.documentElement.scrollWidth);
  for (const el of document.querySelectorAll('button, a.button, .badge, h1, h2, h3, label, nav a, dt, dd, .tabs a, select, th, td, p')) {
    const style = getComputedStyle(el);
    if (style.display === 'none' || el.closest('[hidden], .visually-hidden') || el.closest('.table-scroll, .scroll, [data-scroll]')) continue;
    if (el.scrollWidth > el.clientWidth + 1 && style.overflowX !== 'auto' && style.overflowX !== 'scroll')
      found.push(el.tagName.toLowerCase() + '.' + el.className + ': ' + el.innerText.slice(0, 60));
  }
  return found;
}"""


# The header's language label and button, and each tab of a hosting, keep their words whole: one line
# of text each (a word broken in two, "Sprach|e", would make two; "E-Mail-|Protokoll" may break at its hyphen).
_BROKEN = r"""() => [...document.querySelectorAll('.language-form label, .language-form button, .tabs a, nav a')]
  .filter((el) => { const range = document.createRange(); range.selectNodeContents(el);
                    const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
                    return tops.size > 1 && !/[\s-]/.test(el.innerText.trim()); })
  .map((el) => el.innerText.trim())"""


def _check(page, language: str, name: str) -> None:
    page.wait_for_timeout(150)  # let the layout paint
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{language}-{name}-360.png"), full_page=True)
    assert page.locator("html").get_attribute("lang") == language
    overflowing = page.evaluate(_OVERFLOWS)
    assert not overflowing, f"{language} {name} at 360 px: {overflowing}"
    broken = page.evaluate(_BROKEN)
    assert not broken, f"{language} {name} at 360 px: words broken in two: {broken}"


@pytest.mark.parametrize("language", sorted(BLOCK))
def test_each_new_language_fits_a_phone_on_every_main_page(gateway: RunningGateway, browser, language: str) -> None:  # noqa: F811
    with for_writing(gateway.engine).begin() as connection:
        accounts.add_user(connection, "ops@shop.example", PASSWORD, operator=True)
    submit(gateway.smtp_port, b"Subject: Ihre Bestellung Nummer 1234567890\r\n\r\nDanke!\r\n", ["client@sink.test"])
    (sent,) = wait_status(gateway.engine, "sent", 1)
    with for_writing(gateway.engine).begin() as connection:
        change_state(connection, HOSTING, Action.BLOCK, Actor.CUSTOMER, time.time())
    submit(gateway.smtp_port, b"Subject: held\r\n\r\nWaiting.\r\n", ["later@sink.test"])
    (held,) = wait_status(gateway.engine, "held", 1)
    with for_writing(gateway.engine).begin() as connection:  # a long and hostile entry for both audit pages
        url = "https://hooks.example/" + "Zustellungsbenachrichtigung" * 20 + '?<img src=x onerror="document.title=1">'
        audit.record(connection, audit.Actor.user("owner@shop.example"), "webhook.create", "webhook 1", time.time(),
                     after={"url": url, "events": ["hosting.state_changed"]}, hosting=HOSTING)  # fmt: skip

    base = f"http://localhost:{gateway.gateway.web_port}"
    page = browser.new_page(viewport={"width": 360, "height": 800})
    page.goto(f"{base}/login")
    log_in(page, base)
    page.select_option("#language-select", language)
    page.locator("form.language-form").get_by_role("button").click()
    page.wait_for_url(f"{base}/hostings")
    _check(page, language, "hostings")

    page.goto(f"{base}/hostings/{HOSTING}")
    playwright.expect(page.locator("button[data-action=block]")).to_have_text(BLOCK[language])
    _check(page, language, "hosting")
    page.locator("button[data-action=unblock]").click()  # the longest confirmation of the page
    dialog = page.locator("dialog#dialog")
    playwright.expect(dialog).to_be_visible()
    _check(page, language, "dialog-unblock")
    page.keyboard.press("Escape")
    for path, name in (("/log", "log"), (f"/log/{sent['id']}", "message"), ("/held", "held"), ("/scripts", "scripts"),
                       ("/domains", "domains"), ("/webhooks", "webhooks"), ("/test-send", "test-send"), ("/audit", "audit"),
                       (f"/mail/{held['queue_id']}", "viewer"), (f"/mail/{held['queue_id']}?confirm=delete", "viewer-delete")):  # fmt: skip
        page.goto(f"{base}/hostings/{HOSTING}{path}")
        _check(page, language, name)
    page.goto(f"{base}/hostings/{HOSTING}/audit")
    assert page.locator("main img").count() == 0 and "<img src=x" in page.locator("main table").inner_text()  # shown, not run
    page.goto(f"{base}/account")
    _check(page, language, "account")
    page.locator("form.logout-form").get_by_role("button").click()
    page.goto(f"{base}/login")
    _check(page, language, "login")  # the choice outlives the session (its cookie)

    page.fill("#login-email", "ops@shop.example")
    page.fill("#login-password", PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_url(f"{base}/hostings")
    page.select_option("#language-select", language)
    page.locator("form.language-form").get_by_role("button").click()
    page.wait_for_url(f"{base}/hostings")
    for path, name in (("/operator", "operator-hostings"), (f"/operator/hostings/{HOSTING}", "operator-hosting"),
                       ("/operator/queue", "operator-queue"), ("/operator/accounts", "operator-accounts"),
                       ("/operator/audit", "operator-audit"), ("/operator/domains", "operator-domains"),
                       ("/operator/webhooks", "operator-webhooks"), (f"/operator/hostings/{HOSTING}/mail", "operator-mail"),
                       (f"/operator/hostings/{HOSTING}/mail/{held['queue_id']}", "operator-message")):  # fmt: skip
        page.goto(f"{base}{path}")
        _check(page, language, name)
