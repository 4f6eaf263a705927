"""The test send over real HTTP and real SMTP: the owner sends a test message from the area and
the API, and sees, live, what the receiving server answered and whether (and with which domain)
it was signed; it goes through intake's own acceptance, so a blocked hosting holds it; an hourly
allowance stops it from being a spam cannon; bad input is refused and tenants are kept apart."""

from __future__ import annotations

import re
import time
from html import unescape

import dkim
import httpx2
import pytest
from sqlalchemy import update

from scriptmail.app import PARTS
from scriptmail.domains.keys import Algorithm
from scriptmail.domains.provision import new_keys
from scriptmail.domains.records import dkim_record
from scriptmail.store import accounts
from scriptmail.store import domains as domain_store
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from scriptmail.store.schema import dkim_keys
from tests.support.gateway import HOSTING, RunningGateway
from tests.support.sink import Behaviour, Sink
from tests.support.web_client import OTHER, A, B, Browser

PAGE = f"/hostings/{HOSTING}/test-send"
API = f"/1.0/hosting/web/{HOSTING}/email/test"


@pytest.fixture
def web_settings() -> dict:
    return {}


@pytest.fixture
def parts() -> tuple[str, ...]:
    return PARTS


@pytest.fixture
def gateway(make_gateway, web_settings: dict, parts: tuple[str, ...]) -> RunningGateway:
    """The gateway of the area fixture, with the web settings and parts a test gives (by parametrize)."""
    return make_gateway(parts=parts, web=web_settings or None)


def _live(owner: Browser, location: str, timeout: float = 20.0) -> str:
    """The result fragment, asked again (as htmx does) until it stops asking."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fragment = owner.get(f"{location}/live", headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        if "hx-trigger" not in fragment.text:
            return unescape(fragment.text)
        time.sleep(0.1)
    raise AssertionError(f"the test never got a final result: {fragment.text}")


def _send(owner: Browser, to: str, **extra: str):
    form = owner.get(PAGE)
    return owner.post(PAGE, {"csrf": owner.csrf(form), "email": to, **extra})


def test_a_test_message_reaches_the_receiving_server_and_its_answer_is_shown_live(
    gateway: RunningGateway, sink: Sink, area
) -> None:
    owner = area()
    owner.login(A)
    assert 'href="/hostings/shop.example/test-send"' in owner.get(f"/hostings/{HOSTING}").text
    form = owner.get(PAGE)
    assert form.status_code == 200 and 'value="test@shop.example"' in form.text
    assert "You can send 5 more test messages this hour." in form.text
    sent = _send(owner, "me@sink.test")
    assert sent.status_code == 303 and re.fullmatch(rf"{PAGE}/\d+", sent.headers["location"])
    page = owner.get(sent.headers["location"])
    assert page.status_code == 200 and "me@sink.test" in page.text
    result = _live(owner, sent.headers["location"])
    assert "Accepted by the receiving server" in result and "250 2.0.0 accepted by sink" in result
    assert "Not signed" in result
    (received,) = sink.wait_for(1)
    assert received.recipients == ["me@sink.test"] and b"Subject: scriptmail test message for shop.example" in received.data
    assert "You can send 4 more test messages this hour." in owner.get(PAGE).text
    with gateway.engine.connect() as connection:  # it is in the log like a script's mail, counted for the quota
        from scriptmail.store import log as store_log

        (row,) = store_log.recent(connection, store_log.Filters(hosting=HOSTING))
    assert row["recipient"] == "me@sink.test" and row["status"] == "sent"


def test_a_refusal_of_the_receiving_server_is_shown_with_its_reply(gateway: RunningGateway, sink: Sink, area) -> None:
    sink.behaviour = Behaviour(rcpt=lambda address: "550 5.1.1 <nobody@sink.test>: no such user")
    owner = area()
    owner.login(A)
    sent = _send(owner, "nobody@sink.test")
    result = _live(owner, sent.headers["location"])
    assert "Refused by the receiving server" in result and "550 5.1.1 <nobody@sink.test>: no such user" in result
    assert sink.messages == []


# Without the scheduler: its DNS check would find no record for the key this test marks verified.
@pytest.mark.parametrize("parts", [tuple(part for part in PARTS if part != "scheduler")])
def test_a_test_from_a_verified_domain_is_signed_with_it(gateway: RunningGateway, sink: Sink, area) -> None:
    with for_writing(gateway.engine).begin() as connection:
        hosting_id = hosting_store.find_hosting(connection, name=HOSTING).id
        domain_store.add_domain(
            connection, hosting_id, "mail.shop.example", new_keys(gateway.settings.domains, time.time()), time.time()
        )
        connection.execute(update(dkim_keys).values(state="verified", active=1))  # as the DNS check does once it finds them
        keys = domain_store.keys_to_check(connection, "mail.shop.example")
    owner = area()
    owner.login(A)
    form = owner.get(PAGE)
    assert form.text.index('value="test@mail.shop.example"') < form.text.index(
        'value="test@shop.example"'
    )  # the verified domain first
    sent = _send(owner, "me@sink.test", sender="test@mail.shop.example")
    result = _live(owner, sent.headers["location"])
    assert "Accepted by the receiving server" in result and "Signed (DKIM) with mail.shop.example" in result
    (received,) = sink.wait_for(1)
    records = {}
    for key in keys:
        record = dkim_record(key["selector"], "mail.shop.example", Algorithm(key["algorithm"]), key["public_key"])
        records[(record.name + ".").encode()] = "".join(record.strings).encode()
    assert dkim.verify(received.data, dnsfunc=lambda name, timeout=5: records.get(name))  # an independent check of the signature


@pytest.mark.parametrize("web_settings", [{"test_sends_per_hour": 2}])
def test_a_blocked_hosting_holds_the_test_and_the_hour_allows_only_so_many(gateway: RunningGateway, sink: Sink, area) -> None:
    owner = area()
    owner.login(A)
    overview = owner.get(f"/hostings/{HOSTING}")
    owner.post(f"/hostings/{HOSTING}/action", {"csrf": owner.csrf(overview), "action": "BLOCK", "confirm": "yes"})
    first = _send(owner, "me@sink.test")
    assert "Held: sending is blocked for this hosting" in _live(owner, first.headers["location"])
    refused = _send(owner, "not an address")  # refused before it counts
    assert refused.status_code == 400 and "This is not a valid e-mail address." in unescape(refused.text)
    assert _send(owner, "me@sink.test").status_code == 303
    third = _send(owner, "me@sink.test")
    assert third.status_code == 429 and "At most 2 test messages per hour" in unescape(third.text)
    assert 'value="me@sink.test"' in third.text  # what was typed stays in the form
    assert sink.messages == []
    with for_writing(gateway.engine).begin() as connection:
        token = accounts.create_token(connection, accounts.find_user(connection, email=A), "t")[1]
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30) as client:
        answer = client.post(API, json={"to": "me@sink.test"}, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 429 and int(answer.headers["retry-after"]) > 3000
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_api_sends_a_test_and_refuses_bad_input(gateway: RunningGateway, sink: Sink, area) -> None:
    with for_writing(gateway.engine).begin() as connection:
        tokens = {
            email: accounts.create_token(connection, accounts.find_user(connection, email=email), "t")[1] for email in (A, B)
        }
    mine, theirs = ({"Authorization": f"Bearer {tokens[email]}"} for email in (A, B))
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30) as client:
        created = client.post(API, json={"to": "me@sink.test"}, headers=mine)
        assert created.status_code == 201, created.text
        test = created.json()
        assert test["sender"] == "test@shop.example" and test["to"] == "me@sink.test" and test["queueId"]
        deadline = time.monotonic() + 20
        while not test["final"] and time.monotonic() < deadline:
            time.sleep(0.1)
            test = client.get(f"{API}/{test['id']}", headers=mine).json()
        assert test["phase"] == "accepted" and test["code"] == 250 and test["signed"] is False and test["dkimDomain"] == ""
        for body in (
            {},
            {"to": "x"},
            {"to": "a@b.test\r\nBcc: c@d.test"},
            {"to": "a" * 330 + "@b.test"},
            {"to": "me@sink.test", "extra": 1},
        ):
            answer = client.post(API, json=body, headers=mine)
            assert answer.status_code in (400, 422), (body, answer.status_code)
        wrong_sender = client.post(API, json={"to": "me@sink.test", "sender": "ceo@bank.example"}, headers=mine)
        assert wrong_sender.status_code == 400 and "test@shop.example" in wrong_sender.json()["detail"]
        assert client.post(API, json={"to": "me@sink.test"}).status_code == 401
        assert client.post(API, json={"to": "me@sink.test"}, headers=theirs).status_code == 404
        assert client.get(f"{API}/{test['id']}", headers=theirs).status_code == 404
        assert client.get(f"/1.0/hosting/web/{OTHER}/email/test/{test['id']}", headers=theirs).status_code == 404
        assert client.get(f"{API}/0", headers=mine).status_code == 422
    assert len(sink.messages) == 1


def test_the_area_form_refuses_hostile_input_and_other_tenants(gateway: RunningGateway, area) -> None:
    owner = area()
    owner.login(A)
    for bad in ("", "a@b", "a@b.test\r\nBcc: c@d.test", "<a@b.test>", '"x"@b.test'):
        answer = _send(owner, bad)
        assert answer.status_code == 400 and "This is not a valid e-mail address." in unescape(answer.text), repr(bad)
    assert _send(owner, "me@sink.test", sender="ceo@bank.example").status_code == 400
    assert _send(owner, "a" * 400 + "@b.test").status_code == 422
    assert owner.post(PAGE, {"csrf": "forged", "email": "me@sink.test"}).status_code == 403
    assert owner.get(f"{PAGE}/999999").status_code == 404 and owner.get(f"{PAGE}/x/live").status_code == 404
    thief = area()
    thief.login(B)
    assert thief.get(PAGE).status_code == 404
    assert thief.post(PAGE, {"csrf": thief.csrf(thief.get("/hostings")), "email": "me@sink.test"}).status_code == 404
