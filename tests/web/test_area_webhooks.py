"""The customer area's Webhooks page and the evidence of automatic blocks in the areas, over real
HTTP against a running gateway that sends to a loopback receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from scriptmail.control.states import Action, Actor
from scriptmail.store import accounts
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state
from tests.support.gateway import HOSTING, RunningGateway
from tests.support.web_client import OPERATOR, PASSWORD, A
from tests.support.webhook_receiver import WebhookReceiver

PAGE = f"/hostings/{HOSTING}/webhooks"
EVIDENCE = {
    "signal": "bounce_ratio",
    "figures": {"bounced": 31, "attempted": 50, "ratio": 0.62, "threshold": 0.2},
    "window": {"recipients": 50},
    "samples": [{"id": 7, "at": 1_764_000_000.0, "to": "gone@dest.test", "subject": "<b>Offer</b>", "script": "/www/contact.php"}],
}


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


def test_a_customer_adds_an_endpoint_sees_the_secret_once_and_sends_a_test_event(area, receiver: WebhookReceiver) -> None:
    browser = area()
    browser.login(A)
    page = browser.get(PAGE)
    assert page.status_code == 200 and "No endpoint yet." in page.text
    csrf = browser.csrf(page)
    added = browser.post(PAGE, {"url": receiver.url, "events": ["hosting.state_changed", "message.bounced"], "description": "panel", "csrf": csrf})
    assert added.status_code == 200 and added.headers["cache-control"] == "no-store"
    receiver.secret = added.text.split('<code class="secret">')[1].split("</code>")[0]
    assert receiver.secret.startswith("whsec_")
    again = browser.get(PAGE)
    assert receiver.secret not in again.text and receiver.url in again.text and "A message bounces" in again.text
    endpoint_id = again.text.split(f"{PAGE}/")[1].split("/")[0]
    assert browser.post(f"{PAGE}/{endpoint_id}/test", {"csrf": csrf}).status_code == 303
    _wait(lambda: receiver.received)
    assert receiver.received[0].verified and receiver.received[0].body["type"] == "webhook.test"
    _wait(lambda: "204" in browser.get(PAGE).text.split("Deliveries")[-1])
    rotated = browser.post(f"{PAGE}/{endpoint_id}/rotate", {"csrf": csrf})
    assert "also signs for 24 more hours" in rotated.text and receiver.secret not in rotated.text
    assert browser.post(f"{PAGE}/{endpoint_id}/remove", {"csrf": csrf}).status_code == 303
    assert "No endpoint yet." in browser.get(PAGE).text
    assert browser.post(f"{PAGE}/{endpoint_id}/remove", {"csrf": csrf}).status_code == 404


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"url": "ftp://x.example/", "events": ["report.sent"]}, "https://"),
        ({"url": "https://u:p@x.example/", "events": ["report.sent"]}, "user name or password"),
        ({"url": "https://x.example/"}, "Choose at least one event."),
        ({"url": "https://x.example/", "events": ["mail.sent"]}, "unknown event"),
        ({"url": "<script>alert(1)</script>", "events": ["report.sent"]}, "https://"),
    ],
)
def test_bad_endpoints_are_refused_on_the_form_with_what_is_wrong(area, form: dict, words: str) -> None:
    browser = area()
    browser.login(A)
    csrf = browser.csrf(browser.get(PAGE))
    answer = browser.post(PAGE, {**form, "csrf": csrf})
    assert answer.status_code == 400 and words in answer.text and "<script>alert" not in answer.text
    assert browser.post(PAGE, {"url": "https://x.example/", "events": ["report.sent"], "csrf": "forged"}).status_code == 403
    assert "No endpoint yet." in browser.get(PAGE).text


@pytest.mark.parametrize(("language", "figures"), [("es", "31 de los últimos 50 destinatarios han rebotado"),
                                                   ("fr", "31 des 50 derniers destinataires sont en erreur"),
                                                   ("en", "31 of the last 50 recipients bounced")])  # fmt: skip
def test_the_evidence_of_an_automatic_block_is_shown_to_the_customer_and_the_operator(
    gateway: RunningGateway, area, language: str, figures: str
) -> None:
    with for_writing(gateway.engine).begin() as connection:
        user = accounts.add_user(connection, f"{language}@users.test", PASSWORD, language=language)
        accounts.grant(connection, user, HOSTING)
        change_state(connection, HOSTING, Action.DETECT_BOUNCE, Actor.POLICY, time.time(), reason="too many bounces", evidence=EVIDENCE)
    customer = area()
    customer.login(f"{language}@users.test")
    page = customer.get(f"/hostings/{HOSTING}").text
    overview = page.split('id="history-title"')[0]
    assert figures in overview and "gone@dest.test" in overview and "/www/contact.php" in overview
    assert "&lt;b&gt;Offer&lt;/b&gt;" in page and "<b>Offer</b>" not in page
    assert page.count(figures) == 2  # the state section and the history
    assert "Mark as a false positive" not in page and "Marcar como" not in page
    operator = area()
    operator.login(OPERATOR)
    hosting_page = operator.get(f"/operator/hostings/{HOSTING}")
    assert "31 of the last 50 recipients bounced" in hosting_page.text
    event_id = hosting_page.text.split(f"/operator/hostings/{HOSTING}/false-positive/")[1].split('"')[0]
    csrf = operator.csrf(hosting_page)
    marked = operator.post(f"/operator/hostings/{HOSTING}/false-positive/{event_id}", {"note": "a newsletter", "csrf": csrf})
    assert marked.status_code == 303
    assert f"Marked as a false positive by {OPERATOR}: a newsletter" in operator.get(f"/operator/hostings/{HOSTING}").text
    assert operator.post(f"/operator/hostings/{HOSTING}/false-positive/{event_id}", {"note": "", "csrf": csrf}).status_code == 404
    assert customer.post(f"/operator/hostings/{HOSTING}/false-positive/{event_id}", {"csrf": customer.csrf(customer.get("/hostings"))}).status_code in (403, 404)  # noqa: E501
    metrics = operator.get("/metrics").text
    assert 'scriptmail_automatic_blocks_false_positive_total{signal="bounce_ratio"} 1.0' in metrics
