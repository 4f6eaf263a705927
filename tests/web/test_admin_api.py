"""The provisioning API as a hosting provider's panel uses it, over real HTTP against a running
gateway: create a hosting, give it a password, send mail as it over SMTP and sendmail, change it,
delete it; scopes, idempotency, the audit log, rate limits and hostile input (issue 14)."""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from scriptmail.store import accounts
from scriptmail.store import hostings as hosting_store
from scriptmail.store import log as store_log
from scriptmail.store.engine import for_writing
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.sink import Sink

SENDMAIL = str(Path(sys.executable).with_name("scriptmail-sendmail"))
PANEL = "panel.example"


@pytest.fixture
def admin(gateway: RunningGateway):
    """Tokens: an operator's of each scope, the operator's own (no scope), and customer A's."""
    with for_writing(gateway.engine).begin() as connection:
        operator = accounts.add_user(connection, "ops@example.net", "a long password", operator=True)
        customer = accounts.add_user(connection, "a@users.test", "a long password")
        accounts.grant(connection, customer, HOSTING)
        tokens = {scope: accounts.create_token(connection, operator, scope, scope=scope)[1] for scope in accounts.SCOPES}
        tokens["own"] = accounts.create_token(connection, operator, "own")[1]
        tokens["customer"] = accounts.create_token(connection, customer, "mine")[1]
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30) as client:
        yield client, {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}


def _sendmail(gateway: RunningGateway, data: bytes) -> subprocess.CompletedProcess:
    env = os.environ | {"SCRIPTMAIL_SOCKET": str(gateway.settings.intake.socket), "SCRIPTMAIL_MAILDROP": str(gateway.settings.intake.maildrop)}
    return subprocess.run([SENDMAIL, "-t", "-i"], input=data, capture_output=True, env=env, timeout=30)


def test_a_panel_provisions_a_hosting_that_then_sends_over_smtp_and_sendmail(gateway: RunningGateway, sink: Sink, admin) -> None:
    client, tokens = admin
    provision = tokens["provision"]
    # The test runner's uid belongs to shop.example: the panel moves it to the new hosting.
    moved = client.patch(f"/1.0/admin/hostings/{HOSTING}", json={"uid": None}, headers=provision)
    assert moved.status_code == 200 and moved.json()["uid"] is None
    body = {"name": PANEL, "owner": "owner@panel.example", "plan": "unlimited", "uid": os.getuid(), "language": "fr"}
    created = client.post("/1.0/admin/hostings", json=body, headers=provision | {"Idempotency-Key": "order-1"})
    assert created.status_code == 201, created.text
    assert created.json() == {
        "name": PANEL, "uid": os.getuid(), "owner": "owner@panel.example", "plan": "unlimited", "language": "fr",
        "report_to": None, "state": "active", "smtp_auth": False, "trusted_networks": [], "sending_domains": [],
    }  # fmt: skip
    again = client.post("/1.0/admin/hostings", json=body, headers=provision | {"Idempotency-Key": "order-1"})
    assert (again.status_code, again.json()) == (201, created.json())
    other = client.post("/1.0/admin/hostings", json=body | {"plan": "pro"}, headers=provision | {"Idempotency-Key": "order-1"})
    assert other.status_code == 422 and "another body" in other.json()["detail"]
    assert client.post("/1.0/admin/hostings", json=body, headers=provision).status_code == 409  # no key: it exists

    rotated = client.post(f"/1.0/admin/hostings/{PANEL}/smtp-password", headers=provision).json()
    assert rotated["login"] == PANEL and len(rotated["password"]) >= 20
    with gateway.engine.connect() as connection:
        _, stored = hosting_store.smtp_password_hash(connection, PANEL)
    assert stored.startswith("$argon2id$") and rotated["password"] not in stored

    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=30) as smtp:
        smtp.login(PANEL, rotated["password"])
        smtp.sendmail("web@panel.example", ["smtp@sink.test"], b"Subject: over smtp\r\n\r\nhello\r\n")
    result = _sendmail(gateway, b"To: cli@sink.test\nSubject: over sendmail\n\nhello\n")
    assert result.returncode == 0, result.stderr
    sink.wait_for(2)
    rows = wait_status(gateway.engine, "sent", 2)
    assert {(row["hosting"], row["recipient"], row["origin"]) for row in rows} == {
        (PANEL, "smtp@sink.test", "smtp"), (PANEL, "cli@sink.test", "sendmail"),
    }  # fmt: skip
    counters = client.get(f"/1.0/hosting/web/{PANEL}/email", headers=provision).json()
    assert counters["sent"] == 2 and counters["state"] == "ok"

    # A second rotation: the old password stops working at once.
    client.post(f"/1.0/admin/hostings/{PANEL}/smtp-password", headers=provision)
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=30) as smtp, pytest.raises(smtplib.SMTPAuthenticationError):
        smtp.login(PANEL, rotated["password"])

    audit = client.get("/1.0/admin/audit", params={"target": PANEL}, headers=tokens["read"]).json()
    assert [entry["action"] for entry in audit["items"]] == ["hosting.smtp_password", "hosting.smtp_password", "hosting.create"]
    assert {entry["actor"] for entry in audit["items"]} == {f"token {audit['items'][0]['token_id']} (ops@example.net)"}
    assert all(rotated["password"] not in str(entry) for entry in audit["items"])


def test_put_by_name_creates_once_then_changes_only_what_differs(gateway: RunningGateway, admin) -> None:
    client, tokens = admin
    url = f"/1.0/admin/hostings/{PANEL}"
    body = {"owner": "owner@panel.example", "plan": "pro", "report_to": "errors@panel.example"}
    assert client.put(url, json=body, headers=tokens["provision"]).status_code == 201
    assert client.put(url, json=body, headers=tokens["provision"]).status_code == 200
    changed = client.put(url, json=body | {"plan": "starter", "language": "es"}, headers=tokens["provision"]).json()
    assert (changed["plan"], changed["language"], changed["report_to"]) == ("starter", "es", "errors@panel.example")
    entries = client.get("/1.0/admin/audit", params={"target": PANEL}, headers=tokens["read"]).json()["items"]
    assert [entry["action"] for entry in entries] == ["hosting.update", "hosting.create"]  # the same PUT twice: one entry
    assert (entries[0]["before"]["plan"], entries[0]["after"]["plan"]) == ("pro", "starter")
    with gateway.engine.connect() as connection:
        from scriptmail.store.hosting_control import history

        assert history(connection, PANEL)[0]["reason"] == "plan pro → starter; changed through the API by ops@example.net"
    listed = client.get("/1.0/admin/hostings", params={"plan": "starter"}, headers=tokens["read"]).json()
    assert [item["name"] for item in listed["items"]] == [PANEL] and listed["total"] == 1
    page = client.get("/1.0/admin/hostings", params={"limit": 1, "offset": 1}, headers=tokens["read"]).json()
    assert page["total"] == 2 and [item["name"] for item in page["items"]] == [HOSTING]


def test_deleting_a_hosting_with_queued_mail_needs_purge_and_keeps_its_log(gateway: RunningGateway, sink: Sink, admin) -> None:
    client, tokens = admin
    sink.behaviour.rcpt = lambda address: "451 4.3.0 try later"  # the mail stays deferred
    submit(gateway.smtp_port, b"Subject: waiting\r\n\r\nx\r\n", ["later@sink.test"])
    wait_status(gateway.engine, "deferred", 1)
    refused = client.delete(f"/1.0/admin/hostings/{HOSTING}", headers=tokens["provision"])
    assert refused.status_code == 409 and "purge=true" in refused.json()["detail"]
    done = client.delete(f"/1.0/admin/hostings/{HOSTING}", params={"purge": "true"}, headers=tokens["provision"]).json()
    assert done["purged"] == 1 and done["name"].startswith("deleted~") and done["name"].endswith(f"~{HOSTING}")
    # It is gone for everyone, its owner too, and its name is free; its log is kept for operators.
    assert client.get(f"/1.0/admin/hostings/{HOSTING}", headers=tokens["read"]).status_code == 404
    assert client.get(f"/1.0/hosting/web/{HOSTING}/email", headers=tokens["customer"]).status_code == 404
    assert client.get("/1.0/hosting/web", headers=tokens["customer"]).json() == []
    deleted = client.get("/1.0/admin/hostings", params={"deleted": "true"}, headers=tokens["read"]).json()
    assert [item["name"] for item in deleted["items"]] == [done["name"]]
    with gateway.engine.connect() as connection:
        (row,) = store_log.recent(connection, store_log.Filters(hosting=done["name"]))
    assert (row["status"], row["recipient"]) == ("purged", "later@sink.test")
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=30) as smtp, pytest.raises(smtplib.SMTPAuthenticationError):
        smtp.login(HOSTING, "s3cret-pass")
    again = client.put(f"/1.0/admin/hostings/{HOSTING}", json={"owner": "new@shop.example"}, headers=tokens["provision"])
    assert again.status_code == 201


def test_users_grants_and_tokens_through_the_api(gateway: RunningGateway, admin) -> None:
    client, tokens = admin
    made = client.post("/1.0/admin/users", json={"email": "new@users.test", "hostings": [HOSTING]}, headers=tokens["manage"])
    assert made.status_code == 201 and made.json()["hostings"] == [HOSTING] and len(made.json()["password"]) >= 10
    user_id = made.json()["id"]
    assert client.post("/1.0/admin/users", json={"email": "new@users.test"}, headers=tokens["manage"]).status_code == 409
    assert client.delete(f"/1.0/admin/users/{user_id}/hostings/{HOSTING}", headers=tokens["manage"]).json()["hostings"] == []
    assert client.put(f"/1.0/admin/users/{user_id}/hostings/{HOSTING}", headers=tokens["manage"]).json()["hostings"] == [HOSTING]
    assert client.put(f"/1.0/admin/users/{user_id}/hostings/ghost.example", headers=tokens["manage"]).status_code == 404
    token = client.post("/1.0/admin/tokens", json={"user_id": user_id, "label": "ci"}, headers=tokens["manage"]).json()
    mine = {"Authorization": f"Bearer {token['token']}"}
    assert client.get("/1.0/hosting/web", headers=mine).json() == [HOSTING]
    listed = client.get("/1.0/admin/tokens", params={"user_id": user_id}, headers=tokens["read"]).json()
    assert [(t["id"], t["label"], t["scope"]) for t in listed] == [(token["id"], "ci", None)] and "token" not in listed[0]
    assert client.delete(f"/1.0/admin/tokens/{token['id']}", headers=tokens["manage"]).status_code == 204
    assert client.get("/1.0/hosting/web", headers=mine).status_code == 401
    # A customer cannot be given a scope; a token cannot create a larger one than its own.
    scoped = client.post("/1.0/admin/tokens", json={"user_id": user_id, "scope": "read"}, headers=tokens["manage"])
    assert scoped.status_code == 409 and "not an operator" in scoped.json()["detail"]
    ops = client.get("/1.0/admin/users", params={"email": "ops@"}, headers=tokens["read"]).json()["items"][0]
    bigger = client.post("/1.0/admin/tokens", json={"user_id": ops["id"], "scope": "provision"}, headers=tokens["manage"])
    assert bigger.status_code == 403
    assert client.post("/1.0/admin/users", json={"email": "op2@users.test", "operator": True}, headers=tokens["manage"]).status_code == 403
    plans = client.get("/1.0/admin/plans", headers=tokens["read"]).json()
    assert {"name": "starter", "hourly": 10, "max_per_day": 0, "policies": True, "bounce_ratio": 0.2} in plans
    assert client.delete(f"/1.0/admin/users/{user_id}", headers=tokens["manage"]).json()["email"] == "new@users.test"
    actions = [e["action"] for e in client.get("/1.0/admin/audit", headers=tokens["read"]).json()["items"]]
    assert actions == ["user.delete", "token.revoke", "token.create", "user.grant", "user.revoke", "user.create"]


def test_hostile_and_malformed_input_is_refused_and_changes_nothing(gateway: RunningGateway, admin) -> None:
    client, tokens = admin
    headers = tokens["provision"]
    bad_bodies = [
        {"name": "Bad Name", "owner": "o@x.test"}, {"name": "x" * 300, "owner": "o@x.test"},
        {"name": "ok.example", "owner": "not an address"}, {"name": "ok.example", "owner": "o@x.test\r\nBcc: all@evil.test"},
        {"name": "ok.example", "owner": "o@x.test", "uid": -1}, {"name": "ok.example", "owner": "o@x.test", "uid": 2**31},
        {"name": "ok.example", "owner": "o@x.test", "plan": "gold"}, {"name": "ok.example", "owner": "o@x.test", "language": "de"},
        {"name": "ok.example", "owner": "o@x.test", "smtp_password": "chosen"}, {"name": "ok.example", "owner": "o@x.test", "state": "active"},
        {"name": "../etc/passwd", "owner": "o@x.test"}, {"name": "_system", "owner": "o@x.test"}, {"name": "ok\x00.example", "owner": "o@x.test"},
        {"name": ["ok.example"], "owner": "o@x.test"}, {}, [],
        {"name": "ok.example", "owner": "o@x.test", "uid": 1000.5}, {"name": "ok.example", "owner": "o@x.test", "uid": "1000"},
        {"name": "ok.example", "owner": "o@x.test", "uid": True}, {"name": "ok.example", "owner": "o@x.test", "uid": 1e300},
    ]  # fmt: skip
    for body in bad_bodies:
        answer = client.post("/1.0/admin/hostings", json=body, headers=headers)
        assert answer.status_code == 422, (body, answer.status_code, answer.text)
        assert answer.headers["content-type"] == "application/problem+json" and answer.json()["status"] == 422
    assert client.post("/1.0/admin/hostings", content=b"{not json", headers=headers | {"Content-Type": "application/json"}).status_code == 422
    long_key = client.post("/1.0/admin/hostings", json={"name": "ok.example", "owner": "o@x.test"}, headers=headers | {"Idempotency-Key": "k" * 300})
    assert long_key.status_code == 422
    assert client.patch(f"/1.0/admin/hostings/{HOSTING}", json={"owner": None}, headers=headers).status_code == 422
    assert client.patch(f"/1.0/admin/hostings/{HOSTING}", json={"report_to": "x@"}, headers=headers).status_code == 422
    assert client.patch("/1.0/admin/hostings/ghost.example", json={"plan": "pro"}, headers=headers).status_code == 404
    assert client.get("/1.0/admin/hostings/_system", headers=headers).status_code == 422
    for params in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"state": "ok"}, {"name": "a\x00b"}, {"deleted": "maybe"}):
        assert client.get("/1.0/admin/hostings", params=params, headers=headers).status_code == 422, params
    for path in ("/1.0/admin/users/0", "/1.0/admin/users/abc", f"/1.0/admin/users/{2**64}", "/1.0/admin/tokens/-3"):
        assert client.get(path, headers=headers).status_code in (405, 422), path
    assert client.get("/1.0/admin/tokens", headers=headers).status_code == 422  # user_id is required
    for body in ({"email": "x@"}, {"email": "n@x.test", "operator": "yes"}, {"email": "n@x.test", "operator": 0},
                 {"email": "n@x.test", "hostings": ["Bad Name"]}, {"email": "n@x.test", "password": "chosen"}):  # fmt: skip
        assert client.post("/1.0/admin/users", json=body, headers=headers).status_code == 422, body
    for body in ({"user_id": "1"}, {"user_id": 1.5}, {"user_id": True}, {"user_id": 1, "scope": "root"}, {"user_id": 1, "label": "a\nb"}, {"user_id": 1, "label": "x" * 201}):
        assert client.post("/1.0/admin/tokens", json=body, headers=headers).status_code == 422, body
    for params in ({"limit": 0}, {"token_id": 0}, {"action": "a\x00"}, {"offset": "x"}):
        assert client.get("/1.0/admin/audit", params=params, headers=headers).status_code == 422, params
    assert client.delete(f"/1.0/admin/hostings/{HOSTING}", params={"purge": "maybe"}, headers=headers).status_code == 422
    for method, path in (("POST", f"/1.0/admin/hostings/{HOSTING}/smtp-password"), ("DELETE", f"/1.0/admin/hostings/{HOSTING}")):
        assert client.request(method, path, headers={"Authorization": "Basic b3BzOnB3"}).status_code == 401
    with gateway.engine.connect() as connection:
        assert [h.name for h in hosting_store.list_hostings(connection)] == [HOSTING]
    assert client.get("/1.0/admin/audit", headers=tokens["read"]).json()["total"] == 0


def test_a_whole_number_written_with_a_fraction_is_the_integer_the_document_allows(gateway: RunningGateway, admin) -> None:
    client, tokens = admin
    answer = client.post("/1.0/admin/hostings", json={"name": "js.example", "owner": "o@x.test", "uid": 4242.0}, headers=tokens["provision"])
    assert answer.status_code == 201, answer.text  # JSON Schema's "integer" holds 4242.0 (JavaScript sends whole numbers so)
    assert answer.json()["uid"] == 4242
    changed = client.patch("/1.0/admin/hostings/js.example", json={"uid": 4243.0}, headers=tokens["provision"])
    assert changed.status_code == 200 and changed.json()["uid"] == 4243


def test_a_bad_until_is_refused_as_the_document_says(gateway: RunningGateway, admin) -> None:
    client, tokens = admin
    url = f"/1.0/hosting/web/{HOSTING}/email/messages"
    for value in ("2026-13-45", "yesterday", "1700000000", "2026-01-01T00:00:00"):
        answer = client.get(url, params={"until": value}, headers=tokens["customer"])
        assert answer.status_code == 422 and "until" in answer.json()["detail"], value
    assert client.get(url, params={"until": "2026-01-01", "since": "2025-12-01"}, headers=tokens["customer"]).status_code == 200


def test_each_token_is_rate_limited_with_retry_after(make_gateway) -> None:
    gateway = make_gateway(web={"api_rate_per_minute": 6, "api_burst": 3})
    with for_writing(gateway.engine).begin() as connection:
        operator = accounts.add_user(connection, "ops@example.net", "a long password", operator=True)
        first = accounts.create_token(connection, operator, "one", scope="read")[1]
        second = accounts.create_token(connection, operator, "two", scope="read")[1]
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30) as client:
        answers = [client.get("/1.0/admin/plans", headers={"Authorization": f"Bearer {first}"}) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[-1].headers["retry-after"] == "10" and answers[-1].json()["status"] == 429
        assert client.get("/1.0/admin/plans", headers={"Authorization": f"Bearer {second}"}).status_code == 200  # per token
