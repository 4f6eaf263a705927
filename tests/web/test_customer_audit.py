"""The customer's own changes in the audit log (issue 14), on both stores, over real HTTP, SMTP and
DNS: every write route of the customer API (driven with a real token) and of the customer area
(driven with a real session) leaves one entry naming its actor, the hosting and what changed, and
never a secret. The route lists below are checked against the application's own routes, so a
write route added without an entry here fails the sweep. The operator reads the entries (page and
admin API, filtered by hosting); the customer reads their own hosting's trail and no one else's."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterator

import httpx2
import pytest
from sqlalchemy import select, update

from scriptmail.domains.keys import Algorithm
from scriptmail.domains.records import dkim_record
from scriptmail.store import accounts, audit
from scriptmail.store import domains as domain_store
from scriptmail.store.engine import for_writing
from scriptmail.store.schema import audit_log, hostings, webhook_endpoints
from scriptmail.web.app import create_app
from tests.support.dns_server import DnsServer
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.sink import Behaviour, Sink
from tests.support.web_client import OPERATOR, OTHER, PASSWORD, A, B

API = "/1.0/hosting/web/{serviceName}"
# Every write route of the customer API and the action its entry carries.
API_ROUTES = {
    ("PUT", f"{API}/email"): "hosting.report_to",
    ("POST", f"{API}/email/request"): "hosting.*",
    ("POST", f"{API}/email/stored/{{id}}/release"): "message.release",
    ("POST", f"{API}/email/stored/{{id}}/delete"): "message.delete",
    ("POST", f"{API}/email/stored/{{id}}/resend"): "message.resend",
    ("POST", f"{API}/email/suppressions"): "suppression.add",
    ("DELETE", f"{API}/email/suppressions/{{address}}"): "suppression.remove",
    ("POST", f"{API}/webhooks"): "webhook.create",
    ("POST", f"{API}/webhooks/{{id}}/test"): "webhook.test",
    ("POST", f"{API}/webhooks/{{id}}/rotate"): "webhook.rotate",
    ("POST", f"{API}/webhooks/{{id}}/enable"): "webhook.enable",
    ("DELETE", f"{API}/webhooks/{{id}}"): "webhook.remove",
    ("POST", f"{API}/email/domains"): "domain.add",
    ("POST", f"{API}/email/domains/{{domain}}/check"): "domain.check",
    ("POST", f"{API}/email/domains/{{domain}}/rotate"): "domain.rotate",
    ("DELETE", f"{API}/email/domains/{{domain}}"): "domain.remove",
    ("POST", f"{API}/email/test"): "test.send",
}
AREA = "/hostings/{name}"
AREA_ROUTES = {
    ("POST", f"{AREA}/report-to"): "hosting.report_to",
    ("POST", f"{AREA}/action"): "hosting.*",
    ("POST", f"{AREA}/mail/{{message_id}}/release"): "message.release",
    ("POST", f"{AREA}/mail/{{message_id}}/delete"): "message.delete",
    ("POST", f"{AREA}/mail/{{message_id}}/resend"): "message.resend",
    ("POST", f"{AREA}/suppressions/remove"): "suppression.remove",
    ("POST", f"{AREA}/webhooks"): "webhook.create",
    ("POST", f"{AREA}/webhooks/{{id}}/test"): "webhook.test",
    ("POST", f"{AREA}/webhooks/{{id}}/rotate"): "webhook.rotate",
    ("POST", f"{AREA}/webhooks/{{id}}/enable"): "webhook.enable",
    ("POST", f"{AREA}/webhooks/{{id}}/remove"): "webhook.remove",
    ("POST", f"{AREA}/domains"): "domain.add",
    ("POST", f"{AREA}/domains/check"): "domain.check",
    ("POST", f"{AREA}/domains/rotate"): "domain.rotate",
    ("POST", f"{AREA}/test-send"): "test.send",
    ("POST", "/account/tokens"): "token.create",
    ("POST", "/account/tokens/{token_id}/revoke"): "token.revoke",
    ("POST", "/account/password"): "user.password",
}
# Writes that change no hosting and nothing of the account worth an entry: the session itself.
NOT_AUDITED = {("POST", "/login"), ("POST", "/logout"), ("POST", "/language")}
SECRETS = ("whsec_", "PRIVATE", "-----BEGIN", "smtp_password", accounts.TOKEN_PREFIX)


def _write_routes() -> set[tuple[str, str]]:
    """Every (method, path) of the application that changes something, outside the operator's."""
    found = set()
    stack = list(create_app(None).routes)  # type: ignore[arg-type]
    while stack:
        route = stack.pop()
        inner = getattr(route, "original_router", None)
        if inner is not None:
            stack.extend(inner.routes)
            continue
        path = getattr(route, "path", "")
        if path.startswith(("/operator", "/1.0/admin")):
            continue
        for method in (getattr(route, "methods", None) or set()) - {"GET", "HEAD"}:
            found.add((method, path))
    return found


def test_every_customer_write_route_is_audited_or_named_as_not() -> None:
    """Fails the day a write route is added to the customer API or area without being driven below."""
    assert _write_routes() == set(API_ROUTES) | set(AREA_ROUTES) | NOT_AUDITED


# --- driving the routes -----------------------------------------------------------------------


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer({}).start()
    yield server
    server.stop()


@pytest.fixture
def gateway(make_gateway, dns_server: DnsServer) -> RunningGateway:
    # The bounce notice to the sender keeps a bounced message's body until it is written; written
    # only hourly here, so "send again" finds the body however slowly the machine runs.
    return make_gateway(
        nameservers=["127.0.0.1"], dns_port=dns_server.port, domains={"dns_timeout": 1.0},
        web={"api_burst": 100_000, "api_rate_per_minute": 1_000_000}, control={"notice_interval": 3600},
    )  # fmt: skip


class Trail:
    """The audit entries that appear after each step, checked one step at a time."""

    def __init__(self, engine, actor: str) -> None:
        self.engine, self.actor, self.driven = engine, actor, set()
        self.seen = self._last()

    def _last(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(audit_log.c.id).order_by(audit_log.c.id.desc()).limit(1)).scalar() or 0

    def step(self, route: tuple[str, str], action: str, do: Callable[[], httpx2.Response], hosting: str | None = HOSTING,
             status: int = 200) -> dict:  # fmt: skip
        answer = do()
        assert answer.status_code == status, (route, answer.status_code, answer.text[:500])
        with self.engine.connect() as connection:
            rows = connection.execute(select(audit_log).where(audit_log.c.id > self.seen).order_by(audit_log.c.id)).mappings().all()
        assert [(row["action"], row["actor"], row["hosting"]) for row in rows] == [(action, self.actor, hosting)], route
        assert rows[0]["by_operator"] == 0 and time.time() - rows[0]["at"] < 60
        recorded = f"{rows[0]['before']} {rows[0]['after']}"
        assert not any(secret in recorded for secret in SECRETS), recorded
        self.seen = rows[0]["id"]
        self.driven.add(route)
        return dict(rows[0])


def _publish(gateway: RunningGateway, dns_server: DnsServer, domain: str) -> None:
    with gateway.engine.connect() as connection:
        keys = domain_store.keys_to_check(connection, domain)
    for key in keys:
        record = dkim_record(key["selector"], domain, Algorithm(key["algorithm"]), key["public_key"])
        dns_server.records[(record.name + ".", "TXT")] = [" ".join(f'"{part}"' for part in record.strings)]


def _disable(gateway: RunningGateway, endpoint_id: int) -> None:
    with for_writing(gateway.engine).begin() as connection:
        connection.execute(
            update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(disabled_at=time.time(), disabled_reason="failing")
        )


def _state(gateway: RunningGateway) -> str:
    with gateway.engine.connect() as connection:
        return connection.execute(select(hostings.c.state).where(hostings.c.name == HOSTING)).scalar_one()


def _wait(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _message_of(gateway: RunningGateway, status: str, recipient: str) -> int:
    _wait(lambda: any(row["recipient"] == recipient for row in wait_status(gateway.engine, status, 1)))
    (row,) = [row for row in wait_status(gateway.engine, status, 1) if row["recipient"] == recipient]
    return row["queue_id"]


@pytest.fixture
def customer(gateway: RunningGateway, area) -> tuple[int, str]:
    """A's token (its id and the token) beside the area's users."""
    with for_writing(gateway.engine).begin() as connection:
        return accounts.create_token(connection, accounts.find_user(connection, email=A), "panel")


def test_every_change_through_the_customer_api_is_audited_with_its_token(
    gateway: RunningGateway, dns_server: DnsServer, sink: Sink, customer: tuple[int, str]
) -> None:
    token_id, token = customer
    trail = Trail(gateway.engine, f"token {token_id} ({A})")
    base = f"/1.0/hosting/web/{HOSTING}"
    sink.behaviour = Behaviour(rcpt=lambda a: "550 5.1.1 unknown" if a.startswith("bad") else "250 ok")
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30,
                       headers={"Authorization": f"Bearer {token}"}) as client:  # fmt: skip
        entry = trail.step(("PUT", f"{API}/email"), "hosting.report_to", lambda: client.put(f"{base}/email", json={"email": "ops@shop.example"}))
        assert (entry["before"], entry["after"]) == ('{"report_to": null}', '{"report_to": "ops@shop.example"}')

        # State actions, and one-message actions on held and bounced mail.
        request = ("POST", f"{API}/email/request")
        entry = trail.step(request, "hosting.block", lambda: client.post(f"{base}/email/request", json={"action": "BLOCK"}))
        assert entry["after"] == '{"state": "blocked"}'
        submit(gateway.smtp_port, b"Subject: one\r\n\r\nx\r\n", ["one@sink.test"])
        submit(gateway.smtp_port, b"Subject: two\r\n\r\nx\r\n", ["two@sink.test"])
        one, two = _message_of(gateway, "held", "one@sink.test"), _message_of(gateway, "held", "two@sink.test")
        entry = trail.step(("POST", f"{API}/email/stored/{{id}}/release"), "message.release", lambda: client.post(f"{base}/email/stored/{one}/release"))
        assert (entry["target"], entry["after"]) == (f"message {one}", '{"recipients": 1}')
        trail.step(("POST", f"{API}/email/stored/{{id}}/delete"), "message.delete", lambda: client.post(f"{base}/email/stored/{two}/delete"))
        trail.step(request, "hosting.unblock", lambda: client.post(f"{base}/email/request", json={"action": "UNBLOCK"}))
        submit(gateway.smtp_port, b"Subject: bad\r\n\r\nx\r\n", ["bad@sink.test"])
        bad = _message_of(gateway, "bounced", "bad@sink.test")
        entry = trail.step(("POST", f"{API}/email/stored/{{id}}/resend"), "message.resend",
                           lambda: client.post(f"{base}/email/stored/{bad}/resend", json={"to": ["bad@sink.test"]}))  # fmt: skip
        assert entry["after"] == '{"recipients": 1, "to": ["bad@sink.test"]}'
        trail.step(request, "hosting.block", lambda: client.post(f"{base}/email/request", json={"action": "BLOCK"}))
        trail.step(request, "hosting.purge", lambda: client.post(f"{base}/email/request", json={"action": "PURGE"}))
        _wait(lambda: _state(gateway) == "active")
        # A refused change leaves no entry.
        assert client.post(f"{base}/email/request", json={"action": "PURGE"}).status_code == 409
        assert trail._last() == trail.seen

        # Suppressions.
        entry = trail.step(("POST", f"{API}/email/suppressions"), "suppression.add",
                           lambda: client.post(f"{base}/email/suppressions", json={"address": "Gone@Sink.test"}), status=201)  # fmt: skip
        assert entry["target"] == "gone@sink.test"
        entry = trail.step(("DELETE", f"{API}/email/suppressions/{{address}}"), "suppression.remove",
                           lambda: client.delete(f"{base}/email/suppressions/gone@sink.test", params={"requeue": "true"}))  # fmt: skip
        assert entry["after"] == '{"requeue": true, "requeued": 0}'
        assert client.delete(f"{base}/email/suppressions/gone@sink.test").status_code == 404 and trail._last() == trail.seen

        # Webhook endpoints: the secret is in the answers, never in the log.
        hooks = f"{base}/webhooks"
        created = client.post(hooks, json={"url": "https://hooks.example/in", "events": ["*"]})
        assert created.status_code == 201
        endpoint = created.json()["id"]
        trail.driven.add(("POST", f"{API}/webhooks"))
        with gateway.engine.connect() as connection:
            (logged,), _ = audit.entries(connection, action="webhook.create", hosting=HOSTING)
        assert logged["actor"] == trail.actor and logged["after"]["url"] == "https://hooks.example/in"
        assert created.json()["secret"] not in str(logged)
        trail.seen = logged["id"]
        entry = trail.step(("POST", f"{API}/webhooks/{{id}}/test"), "webhook.test", lambda: client.post(f"{hooks}/{endpoint}/test"), status=202)
        rotated: list[httpx2.Response] = []
        trail.step(("POST", f"{API}/webhooks/{{id}}/rotate"), "webhook.rotate", lambda: rotated.append(client.post(f"{hooks}/{endpoint}/rotate")) or rotated[0])
        assert rotated[0].json()["secret"] not in str(audit_rows(gateway))
        _disable(gateway, endpoint)
        entry = trail.step(("POST", f"{API}/webhooks/{{id}}/enable"), "webhook.enable", lambda: client.post(f"{hooks}/{endpoint}/enable"))
        assert '"disabled_reason": "failing"' in entry["after"]
        entry = trail.step(("DELETE", f"{API}/webhooks/{{id}}"), "webhook.remove", lambda: client.delete(f"{hooks}/{endpoint}"), status=204)
        assert "https://hooks.example/in" in entry["before"]

        # Sending domains: add, check (verified through the loopback DNS), rotate, remove.
        domains = f"{base}/email/domains"
        entry = trail.step(("POST", f"{API}/email/domains"), "domain.add", lambda: client.post(domains, json={"domain": "shop.example"}), status=201)
        assert entry["target"] == "shop.example" and '"selectors": ["sm' in entry["after"]
        _publish(gateway, dns_server, "shop.example")
        entry = trail.step(("POST", f"{API}/email/domains/{{domain}}/check"), "domain.check", lambda: client.post(f"{domains}/shop.example/check"))
        assert (entry["before"], entry["after"]) == ('{"state": "pending"}', '{"state": "verified"}')
        trail.step(("POST", f"{API}/email/domains/{{domain}}/rotate"), "domain.rotate", lambda: client.post(f"{domains}/shop.example/rotate"))
        trail.step(("DELETE", f"{API}/email/domains/{{domain}}"), "domain.remove", lambda: client.delete(f"{domains}/shop.example"), status=204)

        entry = trail.step(("POST", f"{API}/email/test"), "test.send", lambda: client.post(f"{base}/email/test", json={"to": "probe@sink.test"}), status=201)
        assert '"to": "probe@sink.test"' in entry["after"]
    assert trail.driven == set(API_ROUTES)


def audit_rows(gateway: RunningGateway) -> list[dict]:
    with gateway.engine.connect() as connection:
        return audit.entries(connection, limit=500)[0]


def test_every_change_in_the_customer_area_is_audited_with_its_user(
    gateway: RunningGateway, dns_server: DnsServer, sink: Sink, area
) -> None:
    browser = area()
    browser.login(A)
    csrf = browser.csrf(browser.get("/hostings"))
    trail = Trail(gateway.engine, f"user {A}")
    page = f"/hostings/{HOSTING}"
    sink.behaviour = Behaviour(rcpt=lambda a: "550 5.1.1 unknown" if a.startswith("bad") else "250 ok")

    def post(path: str, **form: str) -> Callable[[], httpx2.Response]:
        return lambda: browser.post(path, {"csrf": csrf, **form})

    entry = trail.step(("POST", f"{AREA}/report-to"), "hosting.report_to", post(f"{page}/report-to", email="ops@shop.example"), status=303)
    assert entry["after"] == '{"report_to": "ops@shop.example"}'
    action = ("POST", f"{AREA}/action")
    trail.step(action, "hosting.block", post(f"{page}/action", action="BLOCK", confirm="yes"), status=303)
    submit(gateway.smtp_port, b"Subject: one\r\n\r\nx\r\n", ["one@sink.test"])
    submit(gateway.smtp_port, b"Subject: two\r\n\r\nx\r\n", ["two@sink.test"])
    one, two = _message_of(gateway, "held", "one@sink.test"), _message_of(gateway, "held", "two@sink.test")
    trail.step(("POST", f"{AREA}/mail/{{message_id}}/release"), "message.release", post(f"{page}/mail/{one}/release", confirm="yes"), status=303)
    trail.step(("POST", f"{AREA}/mail/{{message_id}}/delete"), "message.delete", post(f"{page}/mail/{two}/delete", confirm="yes"), status=303)
    trail.step(action, "hosting.unblock", post(f"{page}/action", action="UNBLOCK", confirm="yes"), status=303)
    submit(gateway.smtp_port, b"Subject: bad\r\n\r\nx\r\n", ["bad@sink.test"])
    bad = _message_of(gateway, "bounced", "bad@sink.test")
    trail.step(("POST", f"{AREA}/mail/{{message_id}}/resend"), "message.resend", post(f"{page}/mail/{bad}/resend", confirm="yes"), status=303)

    from scriptmail.store import suppressions

    with for_writing(gateway.engine).begin() as connection:
        hosting_id = connection.execute(select(hostings.c.id).where(hostings.c.name == HOSTING)).scalar_one()
        suppressions.add(connection, hosting_id, "gone@sink.test", time.time(), 30)
    entry = trail.step(("POST", f"{AREA}/suppressions/remove"), "suppression.remove",
                       post(f"{page}/suppressions/remove", address="gone@sink.test", confirm="yes"), status=303)  # fmt: skip
    assert entry["after"] == '{"requeue": false, "requeued": 0}'

    created = browser.post(f"{page}/webhooks", {"csrf": csrf, "url": "https://hooks.example/area", "events": "hosting.state_changed"})
    assert created.status_code == 200 and "whsec_" in created.text
    trail.driven.add(("POST", f"{AREA}/webhooks"))
    with gateway.engine.connect() as connection:
        (logged,), _ = audit.entries(connection, action="webhook.create", hosting=HOSTING)
    assert (logged["actor"], logged["by_operator"], logged["after"]["url"]) == (trail.actor, False, "https://hooks.example/area")
    trail.seen = logged["id"]
    endpoint = logged["after"]["id"]
    hooks = f"{page}/webhooks/{endpoint}"
    trail.step(("POST", f"{AREA}/webhooks/{{id}}/test"), "webhook.test", post(f"{hooks}/test"), status=303)
    trail.step(("POST", f"{AREA}/webhooks/{{id}}/rotate"), "webhook.rotate", post(f"{hooks}/rotate"))
    _disable(gateway, endpoint)
    trail.step(("POST", f"{AREA}/webhooks/{{id}}/enable"), "webhook.enable", post(f"{hooks}/enable"), status=303)
    trail.step(("POST", f"{AREA}/webhooks/{{id}}/remove"), "webhook.remove", post(f"{hooks}/remove"), status=303)

    trail.step(("POST", f"{AREA}/domains"), "domain.add", post(f"{page}/domains", domain="shop.example"), status=303)
    _publish(gateway, dns_server, "shop.example")
    trail.step(("POST", f"{AREA}/domains/check"), "domain.check", post(f"{page}/domains/check", domain="shop.example"), status=303)
    trail.step(("POST", f"{AREA}/domains/rotate"), "domain.rotate", post(f"{page}/domains/rotate", domain="shop.example", confirm="yes"), status=303)
    trail.step(("POST", f"{AREA}/test-send"), "test.send", post(f"{page}/test-send", email="probe@sink.test"), status=303)

    # The account's own changes concern no hosting.
    made = browser.post("/account/tokens", {"csrf": csrf, "label": "my panel"})
    assert made.status_code == 200
    trail.driven.add(("POST", "/account/tokens"))
    with gateway.engine.connect() as connection:
        (logged,), _ = audit.entries(connection, action="token.create")
    assert (logged["actor"], logged["hosting"], logged["after"]["label"]) == (trail.actor, None, "my panel")
    assert accounts.TOKEN_PREFIX not in str(logged) and logged["after"]["id"] > 0
    trail.seen = logged["id"]
    trail.step(("POST", "/account/tokens/{token_id}/revoke"), "token.revoke", post(f"/account/tokens/{logged['after']['id']}/revoke"),
               hosting=None, status=303)  # fmt: skip
    new = "another horse battery"
    entry = trail.step(("POST", "/account/password"), "user.password", post("/account/password", current=PASSWORD, new=new, again=new),
                       hosting=None, status=303)  # fmt: skip
    assert (entry["before"], entry["after"]) == (None, None)
    assert trail.driven == set(AREA_ROUTES)


# --- reading the trail ---------------------------------------------------------------------------


def test_the_operator_reads_every_entry_and_a_customer_only_their_hostings_trail(
    gateway: RunningGateway, area, customer: tuple[int, str]
) -> None:
    token_id, token = customer
    hostile = '<img src=x onerror="alert(1)">'
    with for_writing(gateway.engine).begin() as connection:
        operator = accounts.find_user(connection, email=OPERATOR)
        _, reader = accounts.create_token(connection, operator, "ops", scope="read")
        _, b_token = accounts.create_token(connection, accounts.find_user(connection, email=B), "b")
        # A change the platform made, and one of another hosting.
        audit.record(connection, audit.Actor.token(99, OPERATOR), "hosting.update", HOSTING, time.time(),
                     before={"plan": "small"}, after={"plan": "unlimited"}, hosting=HOSTING)  # fmt: skip
        audit.record(connection, audit.Actor.user(B), "suppression.add", "b-only@sink.test", time.time(), hosting=OTHER)
    web = f"http://127.0.0.1:{gateway.gateway.web_port}"
    trail = f"/1.0/hosting/web/{HOSTING}/email/audit"
    with httpx2.Client(base_url=web, timeout=30) as client:
        a = {"Authorization": f"Bearer {token}"}
        hooks = f"/1.0/hosting/web/{HOSTING}/webhooks"
        assert client.post(hooks, json={"url": "https://hooks.example/in", "events": ["*"], "description": hostile}, headers=a).status_code == 201
        added = client.post(f"/1.0/hosting/web/{HOSTING}/email/suppressions", json={"address": "x@sink.test", "reason": "<b>bold</b>"}, headers=a)
        assert added.status_code == 201

        # The customer's own trail: their changes whole, the platform's without who nor values.
        mine = client.get(trail, headers=a).json()
        assert mine["total"] == 3 and [item["action"] for item in mine["items"]] == ["suppression.add", "webhook.create", "hosting.update"]
        assert mine["items"][0]["actor"] == f"token {token_id} ({A})" and mine["items"][0]["after"]["reason"] == "<b>bold</b>"
        assert mine["items"][1]["after"]["description"] == hostile and "whsec_" not in str(mine)
        assert mine["items"][2] | {"at": ""} == {"at": "", "actor": "platform", "action": "hosting.update", "target": HOSTING,
                                                "before": None, "after": None}  # fmt: skip
        assert "b-only" not in str(mine) and OPERATOR not in str(mine)
        paged = client.get(trail, params={"offset": 1, "limit": 1}, headers=a).json()
        assert (paged["total"], [item["action"] for item in paged["items"]], paged["offset"], paged["limit"]) == (3, ["webhook.create"], 1, 1)
        for bad in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"offset": "x"}, {"offset": 10**7}):
            assert client.get(trail, params=bad, headers=a).status_code == 422, bad
        # Another customer's hosting answers like one that does not exist.
        b = {"Authorization": f"Bearer {b_token}"}
        theirs = client.get(trail, headers=b)
        ghost = client.get("/1.0/hosting/web/ghost.example/email/audit", headers=b)
        assert theirs.status_code == ghost.status_code == 404 and theirs.json()["message"] == ghost.json()["message"]
        assert client.get(trail).status_code == 401

        # The operator: every entry, by hosting, with who made it.
        listed = client.get("/1.0/admin/audit", params={"hosting": HOSTING}, headers={"Authorization": f"Bearer {reader}"}).json()
        assert listed["total"] == 3 and {item["hosting"] for item in listed["items"]} == {HOSTING}
        assert [(item["actor"], item["by_operator"]) for item in listed["items"]] == [
            (f"token {token_id} ({A})", False), (f"token {token_id} ({A})", False), (f"token 99 ({OPERATOR})", True),
        ]  # fmt: skip
        assert client.get("/1.0/admin/audit", params={"hosting": "a\x01b"}, headers={"Authorization": f"Bearer {reader}"}).status_code == 422
        assert client.get("/1.0/admin/audit", params={"hosting": HOSTING}, headers=a).status_code == 403

    # The pages escape what customers typed.
    operator_browser = area()
    operator_browser.login(OPERATOR)
    shown = operator_browser.get("/operator/audit", params={"hosting": HOSTING})
    assert shown.status_code == 200 and hostile not in shown.text and "<b>bold</b>" not in shown.text
    assert html.escape(hostile, quote=False) in shown.text or "&lt;img src=x onerror=" in shown.text
    assert "b-only@sink.test" not in shown.text and f"token {token_id} ({A})" in shown.text
    assert "b-only@sink.test" in operator_browser.get("/operator/audit").text  # unfiltered: every hosting
    assert operator_browser.get("/operator/audit", params={"hosting": "<script>" + "x" * 500}).status_code == 200

    owner = area()
    owner.login(A)
    page = owner.get(f"/hostings/{HOSTING}/audit")
    assert page.status_code == 200 and "History of changes" in page.text and hostile not in page.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in page.text and "The platform&#39;s operator" in page.text and OPERATOR not in page.text
    assert owner.get(f"/hostings/{HOSTING}/audit", params={"offset": "nonsense"}).status_code == 200
    assert owner.get(f"/hostings/{OTHER}/audit").status_code == 404
    owner.post("/language", {"csrf": owner.csrf(page), "language": "es"})
    assert "Historial de cambios" in owner.get(f"/hostings/{HOSTING}/audit").text
