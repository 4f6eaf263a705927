"""The customer area over real HTTP: sessions, CSRF, throttling, the "Scripts e-mail" page and
its actions, languages, and tenant isolation (issue 5). The browser tests come with Playwright."""

from __future__ import annotations

import re
import time

from scriptmail.store import hostings as hosting_store
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.sink import Behaviour
from tests.support.web_client import OTHER, PASSWORD


def _state(gateway: RunningGateway, name: str = HOSTING) -> str:
    with gateway.engine.connect() as connection:
        return hosting_store.find_hosting(connection, name=name).state.value


def test_logging_in_sets_a_safe_session_cookie_and_a_new_id_each_time(area) -> None:
    browser = area()
    page = browser.get("/login")
    login_cookie = page.headers["set-cookie"]
    assert login_cookie.startswith("__Host-scriptmail-login=")
    answer = browser.login("a@users.test")
    assert answer.status_code == 303 and answer.headers["location"] == "/hostings"
    session_cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("__Host-scriptmail-session="))
    for flag in ("Secure", "HttpOnly", "SameSite=lax", "Path=/"):
        assert flag.lower() in session_cookie.lower()
    assert "domain=" not in session_cookie.lower()
    first = browser.cookies["__Host-scriptmail-session"]
    assert HOSTING in browser.get("/hostings").text
    assert browser.get("/login").headers["location"] == "/hostings"  # already logged in
    browser.post("/logout", {"csrf": browser.csrf(browser.get("/hostings"))})
    browser.login("a@users.test")
    assert browser.cookies["__Host-scriptmail-session"] != first


def test_wrong_passwords_are_refused_and_then_slowed_down(area) -> None:
    browser = area()
    for _ in range(3):
        assert browser.login("a@users.test", "wrong password").status_code == 401
    throttled = browser.login("a@users.test", PASSWORD)  # even the right password waits now
    assert throttled.status_code == 429
    assert browser.login("nobody@users.test", "whatever").status_code == 429  # the address is throttled too


def test_forms_without_the_token_or_from_another_site_are_refused(gateway: RunningGateway, area) -> None:
    browser = area()
    browser.login("a@users.test")
    token = browser.csrf(browser.get(f"/hostings/{HOSTING}"))
    form = {"action": "BLOCK", "confirm": "yes"}
    assert browser.post(f"/hostings/{HOSTING}/action", form).status_code == 403
    assert browser.post(f"/hostings/{HOSTING}/action", form | {"csrf": "forged"}).status_code == 403
    assert browser.post(f"/hostings/{HOSTING}/action", form | {"csrf": token}, origin="http://evil.test").status_code == 403
    assert _state(gateway) == "active"
    fresh = area()
    fresh.get("/login")
    assert fresh.post("/login", {"email": "a@users.test", "password": PASSWORD, "csrf": "forged"}).status_code == 403


def test_block_purge_and_the_recipient_from_the_page(gateway: RunningGateway, area) -> None:
    browser = area()
    browser.login("a@users.test")
    page = browser.get(f"/hostings/{HOSTING}")
    assert page.status_code == 200
    token = browser.csrf(page)
    # Each button leads to a confirmation that says what will happen (a dialog with JavaScript).
    confirm = browser.get(f"/hostings/{HOSTING}/confirm/block")
    assert confirm.status_code == 200 and "<html" in confirm.text and "72 hours" in confirm.text
    assert 'name="confirm" value="yes"' in confirm.text
    fragment = browser.get(f"/hostings/{HOSTING}/confirm/block", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and 'id="dialog-title"' in fragment.text
    not_now = browser.get(f"/hostings/{HOSTING}/confirm/purge")
    assert "block sending first" in not_now.text and 'name="confirm"' not in not_now.text
    assert browser.get(f"/hostings/{HOSTING}/confirm/delete").status_code == 404
    # Without the confirmation nothing happens.
    assert browser.post(f"/hostings/{HOSTING}/action", {"action": "BLOCK", "csrf": token}).status_code == 303
    assert _state(gateway) == "active" and "Confirm the action first." in browser.get(f"/hostings/{HOSTING}").text
    assert browser.post(f"/hostings/{HOSTING}/action", {"action": "DROP", "confirm": "yes", "csrf": token}).status_code == 400
    assert browser.post(f"/hostings/{HOSTING}/action", {"action": "BLOCK", "confirm": "yes", "csrf": token}).status_code == 303
    assert _state(gateway) == "blocked"
    assert "Sending is blocked." in browser.get(f"/hostings/{HOSTING}").text
    purge = browser.get(f"/hostings/{HOSTING}/confirm/purge").text
    assert "deleted for good" in purge and f'href="/hostings/{HOSTING}/held"' in purge
    browser.post(f"/hostings/{HOSTING}/action", {"action": "PURGE", "confirm": "yes", "csrf": token})
    live = browser.get(f"/hostings/{HOSTING}/state")
    assert ('hx-trigger="every 2s"' in live.text and "HX-Refresh" not in live.headers) or _state(gateway) == "active"
    deadline = time.monotonic() + 15
    while _state(gateway) != "active":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    over = browser.get(f"/hostings/{HOSTING}/state")
    assert over.headers["hx-refresh"] == "true" and "hx-trigger" not in over.text
    refused = browser.post(f"/hostings/{HOSTING}/action", {"action": "PURGE", "confirm": "yes", "csrf": token})
    assert refused.status_code == 303 and "block sending first" in browser.get(f"/hostings/{HOSTING}").text

    form = browser.get(f"/hostings/{HOSTING}/report-to")
    assert form.status_code == 200 and 'name="email"' in form.text
    wrong = browser.post(f"/hostings/{HOSTING}/report-to", {"email": "not an address <b>", "csrf": token})
    assert wrong.status_code == 400 and "not a valid e-mail address" in wrong.text
    assert 'value="not an address &lt;b&gt;"' in wrong.text  # what was typed comes back, escaped
    assert browser.post(f"/hostings/{HOSTING}/report-to", {"email": "  ", "csrf": token}).status_code == 400
    with gateway.engine.connect() as connection:
        assert hosting_store.find_hosting(connection, name=HOSTING).report_to in ("", None)
    browser.post(f"/hostings/{HOSTING}/report-to", {"email": "errors@shop.example", "csrf": token})
    assert "errors@shop.example" in browser.get(f"/hostings/{HOSTING}").text
    with gateway.engine.connect() as connection:
        assert hosting_store.find_hosting(connection, name=HOSTING).report_to == "errors@shop.example"


def test_logging_out_ends_the_session_on_the_server(area) -> None:
    browser = area()
    browser.login("a@users.test")
    stolen = dict(browser.cookies)
    browser.post("/logout", {"csrf": browser.csrf(browser.get("/hostings"))})
    thief = area()
    thief.cookies = stolen
    answer = thief.get("/hostings")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    # The live state of a page left open: htmx is told to load the login page as a whole.
    polled = thief.get(f"/hostings/{HOSTING}/state", headers={"HX-Request": "true"})
    assert polled.status_code == 204 and polled.headers["hx-redirect"] == "/login"


def test_another_customers_hosting_does_not_exist_for_you(gateway: RunningGateway, area) -> None:
    browser = area()
    browser.login("b@users.test")
    token = browser.csrf(browser.get("/hostings"))
    assert HOSTING not in browser.get("/hostings").text
    for name in (HOSTING, "ghost.example", "_system"):
        assert browser.get(f"/hostings/{name}").status_code == 404
        assert browser.post(f"/hostings/{name}/action", {"action": "BLOCK", "confirm": "yes", "csrf": token}).status_code == 404
        assert browser.post(f"/hostings/{name}/report-to", {"email": "thief@evil.test", "csrf": token}).status_code == 404
    assert _state(gateway) == "active"
    operator = area()
    operator.login("op@users.test")
    listing = operator.get("/hostings").text
    assert HOSTING in listing and OTHER in listing


def test_the_language_can_be_chosen(area) -> None:
    browser = area()
    browser.login("a@users.test")
    token = browser.csrf(browser.get("/hostings"))
    browser.post("/language", {"language": "es", "next": f"/hostings/{HOSTING}", "csrf": token})
    assert "Bloquear el envío" in browser.get(f"/hostings/{HOSTING}").text
    browser.post("/language", {"language": "fr", "next": "/hostings", "csrf": token})
    assert 'lang="fr"' in browser.get(f"/hostings/{HOSTING}").text
    assert browser.post("/language", {"language": "xx", "csrf": token}).status_code == 400


def test_pages_carry_security_headers_and_anonymous_visitors_go_to_login(area) -> None:
    browser = area()
    answer = browser.get(f"/hostings/{HOSTING}")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    page = browser.get("/login")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert browser.get("/static/area.css").status_code == 200


def test_the_emails_in_error_page_back_in_time(gateway: RunningGateway, sink, area) -> None:
    sink.behaviour = Behaviour(rcpt=lambda address: "550 5.1.1 no such user")
    addresses = [f"gone{n:02d}@sink.test" for n in range(25)]
    submit(gateway.smtp_port, b"Subject: to nobody\r\n\r\nx\r\n", addresses)
    wait_status(gateway.engine, "bounced", 25)
    browser = area()
    browser.login("a@users.test")
    shown = []
    first = browser.get(f"/hostings/{HOSTING}", params={"limit": 10}).text
    assert 'rel="prev"' not in first
    page, number = first, 0
    while True:
        shown += re.findall(r"gone\d\d@sink.test", page)
        older = re.search(r'href="([^"]+)" rel="next"', page)
        if not older:
            break
        number += 1
        page = browser.get(older.group(1).replace("&amp;", "&")).text
        assert 'rel="prev"' in page
    assert number == 2 and sorted(shown) == addresses  # 10 + 10 + 5, none twice
    assert browser.get(f"/hostings/{HOSTING}", params={"page": -3}).status_code == 200  # clamped, not an error
    malformed = browser.get(f"/hostings/{HOSTING}", params={"page": "x"})
    assert malformed.status_code == 422 and malformed.headers["content-type"].startswith("text/html")
    assert "page" in malformed.text and "<script" not in malformed.text
