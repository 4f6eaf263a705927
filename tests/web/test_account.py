"""My account over real HTTP: password change (and what it does to other sessions), API tokens
created in the area (shown once, working, revocable only by their owner)."""

from __future__ import annotations

import re

import httpx2

from scriptmail.store import accounts
from tests.support.gateway import HOSTING, RunningGateway
from tests.support.web_client import PASSWORD, A, B

NEW_PASSWORD = "a much better passphrase"


def _api(gateway: RunningGateway, token: str) -> httpx2.Response:
    base = f"http://127.0.0.1:{gateway.gateway.web_port}/1.0"
    return httpx2.get(f"{base}/hosting/web/{HOSTING}/email", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_changing_the_password_checks_the_old_one_and_ends_other_sessions(gateway: RunningGateway, area) -> None:
    other_device = area()
    assert other_device.login(A).status_code == 303
    browser = area()
    browser.login(A)
    page = browser.get("/account")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    csrf = browser.csrf(page)

    wrong = browser.post(
        "/account/password", {"current": "not it at all", "new": NEW_PASSWORD, "again": NEW_PASSWORD, "csrf": csrf}
    )
    assert wrong.status_code == 400 and "current password is wrong" in wrong.text
    short = browser.post("/account/password", {"current": PASSWORD, "new": "short", "again": "short", "csrf": csrf})
    assert short.status_code == 400 and "at least 10 characters" in short.text
    differ = browser.post(
        "/account/password", {"current": PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD + "!", "csrf": csrf}
    )
    assert differ.status_code == 400 and "differ" in differ.text
    with gateway.engine.connect() as connection:
        assert accounts.check_password(connection, A, PASSWORD) is not None  # nothing changed yet

    done = browser.post("/account/password", {"current": PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD, "csrf": csrf})
    assert done.status_code == 303
    assert "password has been changed" in browser.get("/account").text
    assert browser.get("/hostings").status_code == 200  # this session goes on
    assert other_device.get("/hostings").headers["location"] == "/login"  # the other one is over
    assert area().login(A, PASSWORD).status_code == 401
    assert area().login(A, NEW_PASSWORD).status_code == 303


def test_wrong_current_passwords_are_throttled(area) -> None:
    browser = area()
    browser.login(A)
    csrf = browser.csrf(browser.get("/account"))
    for _ in range(3):
        browser.post("/account/password", {"current": "guess guess", "new": NEW_PASSWORD, "again": NEW_PASSWORD, "csrf": csrf})
    waited = browser.post("/account/password", {"current": PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD, "csrf": csrf})
    assert waited.status_code == 429


def test_password_form_needs_the_token_and_this_site(area) -> None:
    browser = area()
    browser.login(A)
    csrf = browser.csrf(browser.get("/account"))
    form = {"current": PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD}
    assert browser.post("/account/password", {**form, "csrf": "forged"}).status_code == 403
    assert browser.post("/account/password", {**form, "csrf": csrf}, origin="http://evil.test").status_code == 403
    assert browser.post("/account/tokens", {"label": "x", "csrf": csrf}, origin="http://evil.test").status_code == 403
    assert area().post("/account/password", {**form, "csrf": csrf}).headers["location"] == "/login"


def test_a_token_is_shown_once_works_and_can_be_revoked(gateway: RunningGateway, area) -> None:
    browser = area()
    browser.login(A)
    csrf = browser.csrf(browser.get("/account"))
    assert browser.post("/account/tokens", {"label": "   ", "csrf": csrf}).status_code == 400
    created = browser.post("/account/tokens", {"label": "monitoring <b>", "csrf": csrf})
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    token = re.search(r'value="(smk_[^"]+)"', created.text).group(1)
    assert "monitoring &lt;b&gt;" in created.text and "<b>" not in created.text
    assert _api(gateway, token).status_code == 200

    again = browser.get("/account")
    assert token not in again.text and "monitoring &lt;b&gt;" in again.text  # listed, never shown again
    token_id = int(re.search(r"/account/tokens/(\d+)/revoke", again.text).group(1))

    thief = area()
    thief.login(B)
    thief_csrf = thief.csrf(thief.get("/account"))
    assert thief.post(f"/account/tokens/{token_id}/revoke", {"csrf": thief_csrf}).status_code == 404
    assert _api(gateway, token).status_code == 200  # B could not revoke A's token

    assert browser.post(f"/account/tokens/{token_id}/revoke", {"csrf": csrf}).status_code == 303
    assert _api(gateway, token).status_code == 401
    assert browser.post(f"/account/tokens/{token_id}/revoke", {"csrf": csrf}).status_code == 404
    assert browser.post("/account/tokens/not-a-number/revoke", {"csrf": csrf}).status_code == 422


def test_active_tokens_are_bounded(area) -> None:
    browser = area()
    browser.login(B)
    csrf = browser.csrf(browser.get("/account"))
    for n in range(20):
        assert browser.post("/account/tokens", {"label": f"tool {n}", "csrf": csrf}).status_code == 200
    refused = browser.post("/account/tokens", {"label": "one more", "csrf": csrf})
    assert refused.status_code == 400 and "revoke one first" in refused.text
