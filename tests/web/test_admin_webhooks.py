"""Platform-wide webhook endpoints through the admin API (operator tokens: `read` sees, `manage`
changes), against a running gateway that sends them to a loopback receiver verifying every request
with the reference Standard Webhooks library: every hosting's events, a test event, rotation, the
delivery log, the audit log, and hostile input."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx2
import pytest

from scriptmail.control.states import Action, Actor
from scriptmail.store import accounts, audit
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state
from tests.support.gateway import HOSTING, RunningGateway
from tests.support.webhook_receiver import WebhookReceiver

OTHER = "other.example"
BASE = "/1.0/admin/webhooks"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().start()
    yield running
    running.stop()


@pytest.fixture
def admin(make_gateway):
    gateway: RunningGateway = make_gateway(
        webhooks={"allow_networks": ["127.0.0.0/8"], "poll_interval": 0.2, "retry_delays": [1]}
    )
    with for_writing(gateway.engine).begin() as connection:
        hosting_store.add_hosting(connection, OTHER, "owner@other.example", plan="unlimited")
        operator = accounts.add_user(connection, "ops@example.net", "a long password", operator=True)
        customer = accounts.add_user(connection, "a@users.test", "a long password")
        accounts.grant(connection, customer, HOSTING)
        tokens = {scope: accounts.create_token(connection, operator, scope, scope=scope)[1] for scope in ("read", "manage")}
        tokens["customer"] = accounts.create_token(connection, customer, "mine")[1]
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30) as client:
        yield gateway, client, {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}


def _wait(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.1)


def _block(gateway: RunningGateway, name: str) -> None:
    with for_writing(gateway.engine).begin() as connection:
        change_state(connection, name, Action.BLOCK, Actor.CUSTOMER, time.time(), reason="test")


def test_an_operator_endpoint_gets_every_hostings_events_signed_tests_rotates_and_shows_its_log(admin, receiver) -> None:
    gateway, client, tokens = admin
    body = {"url": receiver.url, "events": ["hosting.state_changed", "suppression.added"], "description": "support desk"}
    assert client.post(BASE, json=body, headers=tokens["read"]).status_code == 403
    created = client.post(BASE, json=body, headers=tokens["manage"])
    assert created.status_code == 201, created.text
    endpoint = created.json()
    receiver.secret = endpoint.pop("secret")
    assert receiver.secret.startswith("whsec_") and endpoint["enabled"] and endpoint["description"] == "support desk"
    assert client.get(BASE, headers=tokens["read"]).json() == [endpoint]
    assert client.get(f"{BASE}/{endpoint['id']}", headers=tokens["read"]).json() == endpoint
    # The customer's API does not show it, and the operator's does not show the customers'.
    customer_own = client.post(
        f"/1.0/hosting/web/{HOSTING}/webhooks", json={"url": receiver.url, "events": ["report.sent"]}, headers=tokens["customer"]
    )
    assert customer_own.status_code == 201
    assert client.get(f"/1.0/hosting/web/{HOSTING}/webhooks", headers=tokens["customer"]).json()[0]["id"] != endpoint["id"]
    assert [e["id"] for e in client.get(BASE, headers=tokens["read"]).json()] == [endpoint["id"]]
    assert client.get(f"{BASE}/{customer_own.json()['id']}", headers=tokens["read"]).status_code == 404

    receiver.answers = [500]  # the first attempt fails, the retry succeeds
    _block(gateway, HOSTING)
    _block(gateway, OTHER)
    mine = lambda: [
        r for r in receiver.received if r.body["type"] == "hosting.state_changed" and r.headers.get("webhook-signature")
    ]  # noqa: E731
    _wait(lambda: len({r.body["data"]["hosting"] for r in mine() if r.verified}) == 2 and len(receiver.received) >= 3)
    hostings_seen = {
        r.body["data"]["hosting"] for r in receiver.received if r.verified and r.body["type"] == "hosting.state_changed"
    }
    assert hostings_seen == {HOSTING, OTHER}

    test = client.post(f"{BASE}/{endpoint['id']}/test", headers=tokens["manage"])
    assert test.status_code == 202
    _wait(lambda: any(r.id == test.json()["webhook_id"] and r.verified for r in receiver.received))

    rotated = client.post(f"{BASE}/{endpoint['id']}/rotate", headers=tokens["manage"])
    assert rotated.status_code == 200 and rotated.json()["secret"] != receiver.secret
    old, receiver.secret = receiver.secret, rotated.json()["secret"]
    again = client.post(f"{BASE}/{endpoint['id']}/test", headers=tokens["manage"]).json()["webhook_id"]
    _wait(lambda: any(r.id == again for r in receiver.received))
    last = next(r for r in receiver.received if r.id == again)
    assert last.verified  # by the new secret; the old one still signs during the grace period
    assert len(last.headers["webhook-signature"].split()) == 2 and old

    log = client.get(f"{BASE}/{endpoint['id']}/deliveries", params={"limit": 200}, headers=tokens["read"])
    assert log.status_code == 200
    statuses = [entry["status_code"] for entry in log.json()]
    assert (
        500 in statuses
        and 204 in statuses
        and {entry["event_type"] for entry in log.json()} >= {"webhook.test", "hosting.state_changed"}
    )

    assert client.post(f"{BASE}/{endpoint['id']}/enable", headers=tokens["manage"]).json()["enabled"] is True
    assert client.delete(f"{BASE}/{endpoint['id']}", headers=tokens["manage"]).status_code == 204
    assert client.get(f"{BASE}/{endpoint['id']}", headers=tokens["read"]).status_code == 404
    with gateway.engine.connect() as connection:
        actions = [row["action"] for row in audit.entries(connection, target=f"webhook {endpoint['id']}")[0]]
    assert sorted(actions) == ["webhook.create", "webhook.remove", "webhook.rotate"]


def test_bad_input_and_foreign_tokens_are_refused_and_change_nothing(admin) -> None:
    gateway, client, tokens = admin
    manage = tokens["manage"]
    cases = [
        ({"url": "http://127.0.0.1:1/x", "events": ["nope"]}, 422),
        ({"url": "ftp://hooks.example.com/", "events": ["*"]}, 422),
        ({"url": "https://user:pw@hooks.example.com/", "events": ["*"]}, 400),
        ({"url": "https://hooks.example.com:0/", "events": ["*"]}, 400),
        ({"url": "https://hooks.example.com/\r\nX-Evil: 1", "events": ["*"]}, 422),
        ({"url": "https://hooks.example.com/", "events": []}, 422),
        ({"url": "https://hooks.example.com/", "events": ["*"], "description": "a\x00b"}, 422),
        ({"url": "https://hooks.example.com/", "events": ["*"], "description": "x" * 201}, 422),
        ({"url": "https://hooks.example.com/", "events": ["*"], "hosting": HOSTING}, 422),
        ({"url": "https://" + "a" * 2100 + ".example/", "events": ["*"]}, 422),
        ({"url": 5, "events": ["*"]}, 422),
    ]
    for body, status in cases:
        answer = client.post(BASE, json=body, headers=manage)
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert client.post(BASE, content=b"{not json", headers=manage | {"content-type": "application/json"}).status_code == 422
    for method, path in (("GET", BASE), ("POST", f"{BASE}/1/test"), ("DELETE", f"{BASE}/1"), ("GET", f"{BASE}/1/deliveries")):
        assert client.request(method, path, headers=tokens["customer"]).status_code == 403
        assert client.request(method, path).status_code == 401
    for path in (f"{BASE}/0", f"{BASE}/-1", f"{BASE}/abc", f"{BASE}/{2**60}"):
        assert client.get(path, headers=tokens["read"]).status_code == 422, path
    for action in ("rotate", "enable", "test"):
        assert client.post(f"{BASE}/99/{action}", headers=manage).status_code == 404
    assert client.get(f"{BASE}/99/deliveries", headers=tokens["read"]).status_code == 404
    assert client.get(f"{BASE}/99/deliveries", params={"limit": 0}, headers=tokens["read"]).status_code == 422
    assert client.get(BASE, headers=tokens["read"]).json() == []
    with gateway.engine.connect() as connection:
        assert audit.entries(connection, action="webhook.create")[1] == 0


def test_a_hostings_sending_domains_are_listed_in_the_admin_api(admin) -> None:
    gateway, client, tokens = admin
    read = tokens["read"]
    for domain in ("shop.example", "Bücher.example"):
        added = client.post(f"/1.0/hosting/web/{HOSTING}/email/domains", json={"domain": domain}, headers=tokens["customer"])
        assert added.status_code == 201, added.text
    one = client.get(f"/1.0/admin/hostings/{HOSTING}", headers=read).json()
    assert one["sending_domains"] == ["shop.example", "bücher.example"]  # sorted by A-label, shown in Unicode
    listed = {item["name"]: item["sending_domains"] for item in client.get("/1.0/admin/hostings", headers=read).json()["items"]}
    assert listed == {HOSTING: ["shop.example", "bücher.example"], OTHER: []}
    # A body without them leaves them as they are (test_admin_hosting_domains sets them).
    with for_writing(gateway.engine).begin() as connection:
        operator = accounts.find_user(connection, email="ops@example.net")
        provision = {"Authorization": f"Bearer {accounts.create_token(connection, operator, 'p', scope='provision')[1]}"}
    changed = client.patch(f"/1.0/admin/hostings/{OTHER}", json={"language": "fr"}, headers=provision)
    assert changed.status_code == 200 and changed.json()["sending_domains"] == []
    again = client.put(
        f"/1.0/admin/hostings/{HOSTING}", json={"owner": "owner@shop.example", "plan": "unlimited"}, headers=provision
    )
    assert again.status_code == 200 and again.json()["sending_domains"] == ["shop.example", "bücher.example"]
