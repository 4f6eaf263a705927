"""A customer's webhooks through the REST API, against a running gateway whose scheduler sends
them to a loopback receiver that verifies them with the reference library."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx2
import pytest
from openapi_spec_validator import validate

from scriptmail.store import accounts
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from tests.support.gateway import HOSTING, RunningGateway
from tests.support.webhook_receiver import WebhookReceiver

OTHER = "other.example"
BASE = f"/1.0/hosting/web/{HOSTING}/webhooks"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().start()
    yield running
    running.stop()


@pytest.fixture
def api(make_gateway):
    gateway: RunningGateway = make_gateway(webhooks={"allow_networks": ["127.0.0.0/8"], "poll_interval": 0.2, "retry_delays": [1]})
    with for_writing(gateway.engine).begin() as connection:
        hosting_store.add_hosting(connection, OTHER, "owner@other.example", plan="unlimited")
        tokens = {}
        for email, owns in (("a@users.test", HOSTING), ("b@users.test", OTHER)):
            user = accounts.add_user(connection, email, "a long password")
            accounts.grant(connection, user, owns)
            tokens[email[0]] = {"Authorization": f"Bearer {accounts.create_token(connection, user, 'test')[1]}"}
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30) as client:
        yield client, tokens


def _wait(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.1)


def test_a_customer_adds_an_endpoint_gets_its_events_signed_and_sees_the_deliveries(api, receiver: WebhookReceiver) -> None:
    client, tokens = api
    created = client.post(BASE, json={"url": receiver.url, "events": ["hosting.state_changed"], "description": "panel"}, headers=tokens["a"])
    assert created.status_code == 201, created.text
    endpoint = created.json()
    receiver.secret = endpoint.pop("secret")
    assert receiver.secret.startswith("whsec_") and endpoint["enabled"] and endpoint["events"] == ["hosting.state_changed"]
    assert client.get(BASE, headers=tokens["a"]).json() == [endpoint]
    assert "secret" not in client.get(f"{BASE}/{endpoint['id']}", headers=tokens["a"]).json()
    receiver.answers = [500]
    answer = client.post(f"/1.0/hosting/web/{HOSTING}/email/request", json={"action": "BLOCK"}, headers=tokens["a"])
    assert answer.json() == "ko"
    _wait(lambda: len(receiver.received) >= 2)
    first, again = receiver.received[:2]
    assert first.id == again.id and first.verified and again.verified
    assert first.body["type"] == "hosting.state_changed" and first.body["data"]["to"] == "blocked"
    assert first.body["data"]["actor"] == "customer"
    test = client.post(f"{BASE}/{endpoint['id']}/test", headers=tokens["a"])
    assert test.status_code == 202
    _wait(lambda: any(request.id == test.json()["webhook_id"] for request in receiver.received))
    _wait(lambda: len(client.get(f"{BASE}/{endpoint['id']}/deliveries", headers=tokens["a"]).json()) == 3)  # recorded after the answer
    deliveries = client.get(f"{BASE}/{endpoint['id']}/deliveries", headers=tokens["a"]).json()
    assert sorted(d["status_code"] for d in deliveries) == [204, 204, 500]
    assert deliveries[-1]["excerpt"] == "answer 500" and "webhook.test" in {d["event_type"] for d in deliveries}
    rotated = client.post(f"{BASE}/{endpoint['id']}/rotate", headers=tokens["a"]).json()
    assert rotated["secret"] != receiver.secret and rotated["previous_valid_seconds"] == 86400
    assert client.delete(f"{BASE}/{endpoint['id']}", headers=tokens["a"]).status_code == 204
    assert client.get(BASE, headers=tokens["a"]).json() == []


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"url": "ftp://x.example/", "events": ["*"]}, 400, "https://"),
        ({"url": "https://u:p@x.example/", "events": ["*"]}, 400, "user name"),
        ({"url": "https://x.example/", "events": ["mail.sent"]}, 400, "unknown event"),
        ({"url": "https://x.example/", "events": []}, 422, "events"),
        ({"url": "https://x.example/" + "a" * 3000, "events": ["*"]}, 422, "url"),
        ({"events": ["*"]}, 422, "url"),
        ({"url": "https://x.example/", "events": "*"}, 422, "events"),
    ],
)
def test_bad_endpoints_are_refused_with_what_is_wrong(api, body: dict, status: int, words: str) -> None:
    client, tokens = api
    answer = client.post(BASE, json=body, headers=tokens["a"])
    assert answer.status_code == status and words in answer.json()["message"], answer.text


def test_another_customers_endpoints_are_not_there(api, receiver: WebhookReceiver) -> None:
    client, tokens = api
    endpoint = client.post(BASE, json={"url": receiver.url, "events": ["*"]}, headers=tokens["a"]).json()
    for method, path in (("GET", BASE), ("POST", f"{BASE}/{endpoint['id']}/test"), ("DELETE", f"{BASE}/{endpoint['id']}")):
        assert client.request(method, path, headers=tokens["b"]).status_code == 404
    theirs = f"/1.0/hosting/web/{OTHER}/webhooks/{endpoint['id']}"
    assert client.get(theirs, headers=tokens["b"]).status_code == 404  # the id exists, but not for this hosting
    assert client.post(f"{theirs}/rotate", headers=tokens["b"]).status_code == 404
    assert client.get(BASE, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_every_webhook_route_and_status_is_in_the_openapi_document(api) -> None:
    client, _ = api
    document = client.get("/openapi.json").json()
    validate(document)
    for path, item in document["paths"].items():
        if "/webhooks" not in path:
            continue
        for operation in item.values():
            # The operator's list has no path parameter to be missing; its other routes do.
            expected = {"401", "403", "429"} if path == "/1.0/admin/webhooks" else {"401", "404", "422"}
            assert expected <= set(operation["responses"]), (path, operation["responses"].keys())
    assert "400" in document["paths"][BASE.replace(HOSTING, "{serviceName}")]["post"]["responses"]
