"""The operator area over real HTTP (issue 5): every hosting and its filters, one hosting's controls
(force a state, lift spam, change the plan), the queue overview, the accounts, and that nobody but
an operator gets in."""

from __future__ import annotations

import re
import time

import pytest

from scriptmail.control.states import Action, Actor
from scriptmail.store import accounts, activity
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state, history
from scriptmail.web import operator, operator_mail
from tests.support.gateway import HOSTING, RunningGateway, submit
from tests.support.web_client import OPERATOR, OTHER, PASSWORD, A, B, Browser

PAGE = f"/operator/hostings/{HOSTING}"


def _hosting(gateway: RunningGateway, name: str = HOSTING) -> hosting_store.Hosting:
    with gateway.engine.connect() as connection:
        return hosting_store.find_hosting(connection, name=name)


def _write(gateway: RunningGateway, operation) -> object:
    """Write beside the running gateway, as another process would."""
    with for_writing(gateway.engine).begin() as connection:
        return operation(connection)


def _operator(area) -> tuple[Browser, str]:
    browser = area()
    browser.login(OPERATOR)
    return browser, browser.csrf(browser.get("/operator"))


def _listed(browser: Browser, query: str = "") -> list[str]:
    page = browser.get("/operator" + query)
    assert page.status_code == 200, page.text
    return re.findall(r'<th scope="row" class="address"><a href="/operator/hostings/([^"]+)">', page.text)


def _user(gateway: RunningGateway, email: str) -> accounts.User | None:
    with gateway.engine.connect() as connection:
        return accounts.find_user(connection, email=email)


def _owned(gateway: RunningGateway, email: str) -> list[str]:
    with gateway.engine.connect() as connection:
        user = accounts.find_user(connection, email=email)
        return accounts.hosting_names(connection, user)


def _flash(browser: Browser, path: str = PAGE) -> str:
    found = re.search(r'<p class="flash[^"]*" role="\w+">([^<]*)</p>', browser.get(path).text)
    return found.group(1) if found else ""


def test_the_operator_sees_every_hosting_and_filters_them(gateway: RunningGateway, area) -> None:
    def prepare(connection) -> None:
        hosting_store.system_hosting_id(connection, "postmaster@gateway.test")
        hosting_store.add_hosting(connection, "quiet.example", "q@quiet.example", plan="starter")
        change_state(connection, OTHER, Action.BLOCK, Actor.OPERATOR, time.time(), reason="test")
        shop = hosting_store.find_hosting(connection, name=HOSTING)
        activity.bump(connection, [(shop.id, time.time(), {"sent": 7})])

    _write(gateway, prepare)
    browser, _ = _operator(area)
    page = browser.get("/operator")
    assert page.status_code == 200
    assert '/static/operator.css"' in page.text
    assert _listed(browser) == ["other.example", "quiet.example", HOSTING]
    assert "_system" not in page.text
    row = re.search(rf'<a href="/operator/hostings/{HOSTING}">.*?</tr>', page.text, re.S).group(0)
    assert A in row and ">7<" in row  # the owner, and sent today
    assert _listed(browser, "?state=blocked") == [OTHER]
    assert _listed(browser, "?state=active") == ["quiet.example", HOSTING]
    assert _listed(browser, "?plan=starter") == ["quiet.example"]
    assert _listed(browser, "?min_today=5") == [HOSTING]
    assert _listed(browser, "?min_today=8") == []
    assert _listed(browser, "?q=QUIET&state=&plan=&min_today=") == ["quiet.example"]
    assert browser.get("/operator?state=nonsense").status_code == 400
    assert browser.get("/operator?min_today=many").status_code == 400


def test_a_long_list_comes_in_pages(gateway: RunningGateway, area) -> None:
    def many(connection) -> None:
        for n in range(operator.PAGE_SIZE + 5):
            hosting_store.add_hosting(connection, f"bulk-{n:03d}.example", "bulk@host.example")

    _write(gateway, many)
    browser, _ = _operator(area)
    first = _listed(browser, "?q=bulk-")
    assert len(first) == operator.PAGE_SIZE and first[0] == "bulk-000.example"
    page = browser.get("/operator?q=bulk-").text
    assert "Page 1 of 2" in page and "page=2" in page
    assert _listed(browser, "?q=bulk-&page=2") == [
        f"bulk-{n:03d}.example" for n in range(operator.PAGE_SIZE, operator.PAGE_SIZE + 5)
    ]


def test_the_operator_forces_a_state_and_lifts_a_spam_block(gateway: RunningGateway, area) -> None:
    browser, token = _operator(area)
    page = browser.get(PAGE)
    assert page.status_code == 200 and HOSTING in page.text
    # Without the confirmation box nothing happens.
    answer = browser.post(f"{PAGE}/state", {"state": "blocked", "csrf": token})
    assert answer.status_code == 303 and answer.headers["location"] == PAGE
    assert _hosting(gateway).state.value == "active"
    assert "Tick the box to confirm." in _flash(browser)
    assert browser.post(f"{PAGE}/state", {"state": "bounce", "confirm": "yes", "csrf": token}).status_code == 303
    assert _hosting(gateway).state.value == "bounce"
    assert "is now bounce" in _flash(browser)
    browser.post(f"{PAGE}/state", {"state": "active", "confirm": "yes", "csrf": token})
    assert _hosting(gateway).state.value == "active"
    assert browser.post(f"{PAGE}/state", {"state": "nonsense", "confirm": "yes", "csrf": token}).status_code == 400
    # A refused change is an error message, not a failure.
    browser.post(f"{PAGE}/state", {"state": "purging", "confirm": "yes", "csrf": token})
    assert "a purge is started with PURGE" in _flash(browser)
    browser.post(f"{PAGE}/action", {"action": "PURGE", "confirm": "yes", "csrf": token})
    assert "block sending first" in _flash(browser)
    assert _hosting(gateway).state.value == "active"

    _write(gateway, lambda c: change_state(c, HOSTING, Action.DETECT_SPAM, Actor.POLICY, time.time(), reason="test"))
    page = browser.get(PAGE).text
    assert "Lift the spam block" in page
    assert browser.post(f"{PAGE}/action", {"action": "UNBLOCK", "confirm": "yes", "csrf": token}).status_code == 303
    assert _hosting(gateway).state.value == "active"
    assert "spam block is lifted" in _flash(browser)
    with gateway.engine.connect() as connection:
        latest = history(connection, HOSTING, limit=1)[0]
    assert latest["actor"] == "operator" and latest["from_state"] == "spam" and latest["to_state"] == "active"
    assert latest["reason"] == f"spam block lifted by operator {OPERATOR} in the operator area"
    assert f"set to bounce by operator {OPERATOR} in the operator area" in browser.get(PAGE).text
    for name in ("ghost.example", "_system"):
        assert browser.get(f"/operator/hostings/{name}").status_code == 404
        assert (
            browser.post(f"/operator/hostings/{name}/state", {"state": "blocked", "confirm": "yes", "csrf": token}).status_code
            == 404
        )


def test_the_operator_blocks_and_unblocks_like_the_customer(gateway: RunningGateway, area) -> None:
    browser, token = _operator(area)
    browser.post(f"{PAGE}/action", {"action": "BLOCK", "confirm": "yes", "csrf": token})
    assert _hosting(gateway).state.value == "blocked"
    assert "Sending is blocked." in _flash(browser)
    browser.post(f"{PAGE}/action", {"action": "UNBLOCK", "confirm": "yes", "csrf": token})
    assert _hosting(gateway).state.value == "active"
    assert browser.post(f"{PAGE}/action", {"action": "DELETE", "confirm": "yes", "csrf": token}).status_code == 400


def test_the_operator_changes_the_plan_to_a_configured_one_only(gateway: RunningGateway, area) -> None:
    browser, token = _operator(area)
    browser.post(f"{PAGE}/plan", {"plan": "starter", "csrf": token})
    assert _hosting(gateway).plan == "unlimited"  # not confirmed
    assert browser.post(f"{PAGE}/plan", {"plan": "starter", "confirm": "yes", "csrf": token}).status_code == 303
    assert _hosting(gateway).plan == "starter"
    assert "now starter" in _flash(browser)
    assert browser.post(f"{PAGE}/plan", {"plan": "platinum", "confirm": "yes", "csrf": token}).status_code == 400
    assert _hosting(gateway).plan == "starter"
    assert _listed(browser, "?plan=starter") == [HOSTING]
    # The customer sees in the history why the quota changed.
    customer = area()
    customer.login(A)
    history = customer.get(f"/hostings/{HOSTING}").text
    assert "Plan changed" in history and "plan unlimited → starter" in history


def test_the_queue_overview_counts_by_status_and_domain(gateway: RunningGateway, area) -> None:
    browser, token = _operator(area)
    empty = browser.get("/operator/queue")
    assert empty.status_code == 200 and "The queue is empty." in empty.text
    browser.post(f"{PAGE}/action", {"action": "BLOCK", "confirm": "yes", "csrf": token})
    submit(gateway.smtp_port, b"Subject: one\r\n\r\nx\r\n", ["a@sink.test", "b@sink.test", "c@far.example"])
    submit(gateway.smtp_port, b"Subject: two\r\n\r\nx\r\n", ["d@sink.test"])
    page = browser.get("/operator/queue").text
    assert 'data-status="held">4<' in page and 'data-status="queued">0<' in page
    domains = re.findall(
        r'<th scope="row" class="op-wrap">([^<]+)</th>\s*<td class="num">(\d+)</td>\s*<td class="num">(\d+)</td>\s*<td class="num">(\d+)</td>',
        page,
    )
    assert domains == [("sink.test", "0", "3", "3"), ("far.example", "0", "1", "1")]
    oldest = page.split('id="oldest-title"')[1]
    assert "a@sink.test" in oldest and "d@sink.test" in oldest and f'href="{PAGE}"' in oldest
    assert oldest.index("a@sink.test") < oldest.index("d@sink.test")  # the oldest first
    hosting_page = browser.get(PAGE).text
    assert re.search(r"<th scope=\"row\">held</th>\s*<td class=\"num\">4</td>", hosting_page)


def test_the_operator_manages_accounts(gateway: RunningGateway, area) -> None:
    browser, token = _operator(area)
    listing = browser.get("/operator/accounts")
    assert listing.status_code == 200
    assert A in listing.text and B in listing.text and HOSTING in listing.text
    # A new user: the password is in this answer only, and works at once.
    added = browser.post("/operator/accounts/add", {"email": "New@Users.test", "language": "fr", "csrf": token})
    assert added.status_code == 200 and added.headers["cache-control"] == "no-store"
    password = re.search(r'<p class="op-password"><code>([^<]+)</code>', added.text).group(1)
    assert password not in browser.get("/operator/accounts").text
    newcomer = area()
    assert newcomer.login("new@users.test", password).status_code == 303
    assert newcomer.get("/hostings").status_code == 200
    user = _user(gateway, "new@users.test")
    assert user.language == "fr" and not user.operator
    again = browser.post("/operator/accounts/add", {"email": "new@users.test", "csrf": token})
    assert again.status_code == 400 and "already exists" in again.text
    bad = browser.post("/operator/accounts/add", {"email": "not an address", "csrf": token})
    assert bad.status_code == 400 and "not a valid e-mail address" in bad.text
    assert _user(gateway, "not an address") is None
    # Grant and revoke.
    assert (
        browser.post("/operator/accounts/grant", {"email": "new@users.test", "hosting": OTHER, "csrf": token}).status_code == 303
    )
    assert _owned(gateway, "new@users.test") == [OTHER]
    assert newcomer.get(f"/hostings/{OTHER}").status_code == 200
    for email, name in (("new@users.test", "ghost.example"), ("new@users.test", "_system"), ("ghost@users.test", HOSTING)):
        assert browser.post("/operator/accounts/grant", {"email": email, "hosting": name, "csrf": token}).status_code == 404
    assert _owned(gateway, "new@users.test") == [OTHER]
    assert (
        browser.post("/operator/accounts/revoke", {"email": "new@users.test", "hosting": OTHER, "csrf": token}).status_code == 303
    )
    assert _owned(gateway, "new@users.test") == []
    assert newcomer.get(f"/hostings/{OTHER}").status_code == 404
    assert (
        browser.post("/operator/accounts/revoke", {"email": "new@users.test", "hosting": OTHER, "csrf": token}).status_code == 404
    )
    # The operator flag, but never one's own.
    browser.post("/operator/accounts/operator", {"email": "new@users.test", "operator": "yes", "csrf": token})
    assert _user(gateway, "new@users.test").operator
    assert newcomer.get("/operator").status_code == 200
    browser.post("/operator/accounts/operator", {"email": "new@users.test", "operator": "no", "csrf": token})
    assert not _user(gateway, "new@users.test").operator
    assert newcomer.get("/operator").status_code == 403
    refused = browser.post("/operator/accounts/operator", {"email": OPERATOR, "operator": "no", "csrf": token})
    assert refused.status_code == 400 and _user(gateway, OPERATOR).operator
    # A new password for A, shown once; the old one stops working.
    assert browser.post("/operator/accounts/password", {"email": A, "csrf": token}).status_code == 400  # not confirmed
    reset = browser.post("/operator/accounts/password", {"email": A, "confirm": "yes", "csrf": token})
    assert reset.status_code == 200 and reset.headers["cache-control"] == "no-store"
    fresh = re.search(r'<p class="op-password"><code>([^<]+)</code>', reset.text).group(1)
    with gateway.engine.connect() as connection:
        assert accounts.check_password(connection, A, PASSWORD) is None
    assert area().login(A, fresh).status_code == 303


def _form_for_everything(token: str) -> dict[str, str]:
    return {
        "csrf": token,
        "confirm": "yes",
        "state": "blocked",
        "action": "BLOCK",
        "plan": "starter",
        "email": A,
        "hosting": OTHER,
        "operator": "yes",
        "language": "en",
    }


def _routes() -> list[tuple[str, str]]:
    found = [
        (method, route.path.replace("{name}", HOSTING).replace("{message_id}", "1").replace("{action}", "release")
         .replace("{kind}", "log"))
        for route in (*operator.router.routes, *operator_mail.router.routes) for method in sorted(route.methods)
    ]  # fmt: skip
    assert len(found) >= 16
    return found


@pytest.mark.parametrize("who", [A, None])
def test_nobody_but_an_operator_gets_in(gateway: RunningGateway, area, who: str | None) -> None:
    browser = area()
    token = "no-session"
    if who:
        browser.login(who)
        token = browser.csrf(browser.get("/hostings"))
    for method, path in _routes():
        answer = browser.get(path) if method == "GET" else browser.post(path, _form_for_everything(token))
        if who:
            assert answer.status_code == 403, (method, path, answer.status_code)
        else:
            assert answer.status_code == 303 and answer.headers["location"] == "/login", (method, path)
        if method == "GET" and who:  # a POST to a page is no way in either
            assert browser.post(path, _form_for_everything(token)).status_code in (403, 405)
    shop = _hosting(gateway)
    assert shop.state.value == "active" and shop.plan == "unlimited"
    assert _owned(gateway, A) == [HOSTING] and not _user(gateway, A).operator
    with gateway.engine.connect() as connection:
        assert accounts.check_password(connection, A, PASSWORD) is not None
        assert [u["email"] for u in accounts.list_users(connection)[0]] == sorted([A, B, OPERATOR])


def test_operator_forms_need_the_token_and_this_site(gateway: RunningGateway, area) -> None:
    browser, token = _operator(area)
    form = {"state": "blocked", "confirm": "yes"}
    assert browser.post(f"{PAGE}/state", form).status_code == 403
    assert browser.post(f"{PAGE}/state", form | {"csrf": "forged"}).status_code == 403
    assert browser.post(f"{PAGE}/state", form | {"csrf": token}, origin="http://evil.test").status_code == 403
    assert (
        browser.post("/operator/accounts/add", {"email": "x@users.test", "csrf": token}, origin="http://evil.test").status_code
        == 403
    )
    assert browser.post("/operator/accounts/operator", {"email": A, "operator": "yes"}).status_code == 403
    assert _hosting(gateway).state.value == "active"
    assert _user(gateway, "x@users.test") is None and not _user(gateway, A).operator


def test_the_operator_pages_speak_the_users_language(area) -> None:
    browser, token = _operator(area)
    browser.post("/language", {"language": "es", "next": "/operator", "csrf": token})
    assert "Todos los alojamientos" in browser.get("/operator").text
    assert "Cuentas" in browser.get("/operator/accounts").text
    browser.post("/language", {"language": "fr", "next": "/operator", "csrf": token})
    assert "File d'attente" in browser.get("/operator/queue").text.replace("&#39;", "'")


def test_the_audit_log_shows_who_changed_what_in_the_operators_language(gateway: RunningGateway, area) -> None:
    from scriptmail.store import audit

    def change(connection) -> None:
        operator = accounts.find_user(connection, email=OPERATOR)
        token_id, _ = accounts.create_token(connection, operator, "panel", scope="provision")
        audit.record(connection, audit.Actor.token(token_id, OPERATOR), "hosting.update", HOSTING, time.time(),
                     before={"plan": "pro"}, after={"plan": "<script>alert(1)</script>"})  # fmt: skip

    browser, _ = _operator(area)
    assert "No change recorded yet." in browser.get("/operator/audit").text
    _write(gateway, change)
    page = browser.get("/operator/audit").text
    assert "hosting.update" in page and "token " in page and OPERATOR in page
    assert "&lt;script&gt;" in page and "<script>alert" not in page  # escaped, never run
    _write(gateway, lambda c: accounts.set_language(c, accounts.find_user(c, email=OPERATOR), "es"))
    assert "Registro de auditoría" in browser.get("/operator/audit").text
    _write(gateway, lambda c: accounts.set_language(c, accounts.find_user(c, email=OPERATOR), "fr"))
    assert "Journal d&#39;audit" in browser.get("/operator/audit").text or "Journal d'audit" in browser.get("/operator/audit").text


def test_every_change_in_the_operator_area_is_in_the_audit_log(gateway: RunningGateway, area) -> None:
    """Plans, accounts and the platform's suppression list, each change with `operator EMAIL`, in
    the same transaction; a password is never written down, only that it changed."""
    from scriptmail.store import audit

    browser, token = _operator(area)
    steps = [
        (f"{PAGE}/plan", {"plan": "starter", "confirm": "yes"}, "hosting.plan", HOSTING),
        ("/operator/accounts/add", {"email": "audited@users.test", "language": "en"}, "user.create", "audited@users.test"),
        ("/operator/accounts/grant", {"email": "audited@users.test", "hosting": OTHER}, "user.grant", "audited@users.test"),
        ("/operator/accounts/revoke", {"email": "audited@users.test", "hosting": OTHER}, "user.revoke", "audited@users.test"),
        ("/operator/accounts/operator", {"email": "audited@users.test", "operator": "yes"}, "user.operator", "audited@users.test"),
        ("/operator/accounts/password", {"email": "audited@users.test", "confirm": "yes"}, "user.password", "audited@users.test"),
        ("/operator/suppressions/add", {"value": "trap@spam.example", "reason": "trap"}, "suppression.add", "trap@spam.example"),
        ("/operator/suppressions/remove", {"value": "trap@spam.example", "confirm": "yes"}, "suppression.remove", "trap@spam.example"),
        ("/operator/suppressions/import", {"csv_text": "a@spam.example,trap\nb@spam.example,trap\n"}, "suppression.import", "platform list"),
    ]
    secrets = []
    for path, form, action, target in steps:
        answer = browser.post(path, {**form, "csrf": token})
        assert answer.status_code in (200, 303), (path, answer.status_code, answer.text[:300])
        secrets += re.findall(r'<p class="op-password"><code>([^<]+)</code>', answer.text)
        with gateway.engine.connect() as connection:
            rows, total = audit.entries(connection, action=action)
        assert total == 1, (action, rows)
        assert rows[0]["actor"] == f"operator {OPERATOR}" and rows[0]["target"] == target
    assert len(secrets) == 2  # the new user's password and the reset one: shown, never recorded
    with gateway.engine.connect() as connection:
        everything = repr(audit.entries(connection, limit=100)[0])
        plan = audit.entries(connection, action="hosting.plan")[0][0]
    assert not any(secret in everything for secret in secrets)
    assert plan["hosting"] == HOSTING and "starter" in repr(plan) and "unlimited" in repr(plan)
    # A refused change leaves nothing.
    browser.post("/operator/accounts/grant", {"email": "ghost@users.test", "hosting": OTHER, "csrf": token})
    with gateway.engine.connect() as connection:
        assert audit.entries(connection, action="user.grant")[1] == 1
