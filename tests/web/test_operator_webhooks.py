"""The operator's page of the platform-wide webhook endpoints, over real HTTP against a running
gateway that sends to a loopback receiver verifying each request with the reference library."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from scriptmail.control.states import Action, Actor
from scriptmail.store import accounts, audit, webhooks
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state
from tests.support.gateway import HOSTING, RunningGateway
from tests.support.web_client import OPERATOR, A
from tests.support.webhook_receiver import WebhookReceiver

PAGE = "/operator/webhooks"


@pytest.fixture
def gateway(make_gateway) -> RunningGateway:
    return make_gateway(webhooks={"allow_networks": ["127.0.0.0/8"], "poll_interval": 0.2})


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().start()
    yield running
    running.stop()


def _wait(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.1)


def test_the_operator_adds_a_platform_endpoint_that_gets_a_hostings_events_tests_and_rotates_it(
    gateway: RunningGateway, area, receiver: WebhookReceiver
) -> None:
    browser = area()
    browser.login(OPERATOR)
    page = browser.get(PAGE)
    assert page.status_code == 200 and "No endpoint yet." in page.text and 'aria-current="page">Platform webhooks' in page.text
    csrf = browser.csrf(page)
    added = browser.post(PAGE, {"url": receiver.url, "events": ["hosting.state_changed", "suppression.added"], "csrf": csrf})
    assert added.status_code == 200 and added.headers["cache-control"] == "no-store"
    receiver.secret = added.text.split('<code class="secret">')[1].split("</code>")[0]
    with gateway.engine.connect() as connection:
        (endpoint,) = webhooks.list_endpoints(connection, None)
    assert endpoint.url == receiver.url and endpoint.created_by == OPERATOR
    with for_writing(gateway.engine).begin() as connection:
        change_state(connection, HOSTING, Action.BLOCK, Actor.CUSTOMER, time.time(), reason="test")
    _wait(lambda: any(r.verified and r.body["data"].get("hosting") == HOSTING for r in receiver.received))
    assert browser.post(f"{PAGE}/{endpoint.id}/test", {"csrf": csrf}).status_code == 303
    _wait(lambda: any(r.verified and r.body["type"] == "webhook.test" for r in receiver.received))
    _wait(lambda: "webhook.test" in browser.get(PAGE).text)  # the delivery log shows it
    rotated = browser.post(f"{PAGE}/{endpoint.id}/rotate", {"csrf": csrf})
    assert rotated.status_code == 200 and "whsec_" in rotated.text and receiver.secret not in rotated.text
    with for_writing(gateway.engine).begin() as connection:
        accounts.set_language(connection, accounts.find_user(connection, email=OPERATOR), "fr")
    french = browser.get(PAGE).text
    assert "<h1>Webhooks de la plateforme</h1>" in french and "les événements choisis de tous les hébergements" in french
    assert browser.post(f"{PAGE}/{endpoint.id}/remove", {"csrf": csrf}).status_code == 303
    with gateway.engine.connect() as connection:
        assert webhooks.list_endpoints(connection, None) == []
        logged = audit.entries(connection, target=f"webhook {endpoint.id}")[0]
    # Every change is audited with the operator who made it (the test event changes nothing).
    assert [(row["action"], row["actor"], row["token_id"]) for row in logged] == [
        ("webhook.remove", f"operator {OPERATOR}", None), ("webhook.rotate", f"operator {OPERATOR}", None),
        ("webhook.create", f"operator {OPERATOR}", None),
    ]  # fmt: skip
    assert logged[-1]["after"]["url"] == receiver.url and logged[0]["before"]["events"] == ["hosting.state_changed", "suppression.added"]
    assert "secret" not in str(logged) and "whsec_" not in str(logged)
    shown = browser.get("/operator/audit").text
    assert f"operator {OPERATOR}" in shown and "webhook.rotate" in shown and f"webhook {endpoint.id}" in shown


def test_bad_input_other_peoples_endpoints_customers_and_forged_forms_are_refused(gateway: RunningGateway, area) -> None:
    with for_writing(gateway.engine).begin() as connection:
        customers, _ = webhooks.create_endpoint(connection, HOSTING, "https://hooks.example.com/a", "*", time.time())
    browser = area()
    browser.login(OPERATOR)
    csrf = browser.csrf(browser.get(PAGE))
    for form, why in (
        ({"url": "http://user:pw@hooks.example.com/", "events": ["*"]}, "user name"),
        ({"url": "gopher://hooks.example.com/", "events": ["report.sent"]}, "https://"),
        ({"url": "https://hooks.example.com/", "events": ["nope"]}, "unknown event"),
        ({"url": "https://hooks.example.com/"}, "Choose at least one event."),
        ({"url": "https://hooks.example.com/\x00", "events": ["report.sent"]}, "control characters"),
    ):
        answer = browser.post(PAGE, form | {"csrf": csrf})
        assert answer.status_code == 400 and why in answer.text, (form, answer.text[-2000:])
        assert 'role="alert"' in answer.text
    assert browser.post(PAGE, {"url": "x" * 3000, "events": ["*"], "csrf": csrf}).status_code == 422
    # A customer's endpoint is not the operator page's to touch; no such id is 404 too.
    for action in ("test", "rotate", "enable", "remove"):
        assert browser.post(f"{PAGE}/{customers.id}/{action}", {"csrf": csrf}).status_code == 404
        assert browser.post(f"{PAGE}/999/{action}", {"csrf": csrf}).status_code == 404
    assert browser.post(PAGE, {"url": "https://hooks.example.com/", "events": ["*"], "csrf": "forged"}).status_code == 403
    assert (
        browser.post(
            PAGE, {"url": "https://hooks.example.com/", "events": ["*"], "csrf": csrf}, origin="https://evil.example"
        ).status_code
        == 403
    )
    customer = area()
    customer.login(A)
    assert customer.get(PAGE).status_code == 403
    assert (
        customer.post(
            PAGE, {"url": "https://hooks.example.com/", "events": ["*"], "csrf": customer.csrf(customer.get("/hostings"))}
        ).status_code
        == 403
    )
    with gateway.engine.connect() as connection:
        assert webhooks.list_endpoints(connection, None) == []
        assert [e.id for e in webhooks.list_endpoints(connection, ...)] == [customers.id]

