"""The operator area's pages for one message at a time: the hosting's held, waiting and failed
mail; release one of three held emails (even under an automatic block, which a customer may not),
delete one, send one again after a 550 to the failed recipient only; each behind a confirmation
box and written in the history as the operator's. And the hosting's exports, with the window."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from html import unescape

import pytest
from sqlalchemy import select

from scriptmail.control.states import Action, Actor
from scriptmail.store import audit, suppressions
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state, history
from scriptmail.store.schema import messages, recipients
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.log_rows import fill_log
from tests.support.sink import Behaviour, Sink
from tests.support.web_client import OPERATOR, A, Browser

MAIL = f"/operator/hostings/{HOSTING}/mail"
EXPORT = f"/operator/hostings/{HOSTING}/export"


def _operator(area) -> Browser:
    browser = area()
    browser.login(OPERATOR)
    return browser


def _ids(gateway: RunningGateway) -> dict[str, int]:
    with gateway.engine.connect() as connection:
        return {row.subject: row.id for row in connection.execute(select(messages.c.id, messages.c.subject))}


def _statuses(gateway: RunningGateway, message_id: int) -> dict[str, str]:
    with gateway.engine.connect() as connection:
        rows = connection.execute(select(recipients.c.address, recipients.c.status).where(recipients.c.message_id == message_id))
        return dict(rows.all())


def _held_three(gateway: RunningGateway, action: Action = Action.BLOCK, state=None) -> dict[str, int]:
    with for_writing(gateway.engine).begin() as connection:
        change_state(connection, HOSTING, action, Actor.OPERATOR if state else Actor.CUSTOMER, time.time(), target=state)
    for subject in ("first", "second", "third"):
        submit(gateway.smtp_port, f"Subject: {subject}\r\n\r\nbody of {subject}\r\n".encode(), [f"{subject}@sink.test"])
    wait_status(gateway.engine, "held", 3)
    return _ids(gateway)


def _act(browser: Browser, message_id: int, action: str, **form: str):
    page = browser.get(f"{MAIL}/{message_id}")
    assert page.status_code == 200, page.text
    return browser.post(f"{MAIL}/{message_id}/{action}", {"csrf": browser.csrf(page), **form})


def _flash(browser: Browser, answer) -> str:
    return unescape(browser.get(answer.headers["location"]).text)


def test_the_operator_releases_one_of_three_under_a_spam_block(gateway: RunningGateway, area, sink: Sink) -> None:
    from scriptmail.model import HostingState

    ids = _held_three(gateway, Action.SET, HostingState.SPAM)
    browser = _operator(area)
    listed = browser.get(MAIL)
    assert listed.status_code == 200
    assert [int(n) for n in re.findall(rf'href="{MAIL}/(\d+)"', listed.text)] == sorted(ids.values(), reverse=True)
    assert f'href="{EXPORT}/log?format=csv"' in listed.text
    page = browser.get(f"{MAIL}/{ids['second']}")
    assert "second@sink.test" in page.text and f'action="{MAIL}/{ids["second"]}/release"' in page.text
    # Unconfirmed: nothing happens, and the page says why.
    unconfirmed = _act(browser, ids["second"], "release")
    assert unconfirmed.status_code == 303 and "Tick the box to confirm." in _flash(browser, unconfirmed)
    assert _statuses(gateway, ids["second"]) == {"second@sink.test": "held"}
    done = _act(browser, ids["second"], "release", confirm="yes", note="support ticket 42")
    assert "The email is released" in _flash(browser, done)
    (received,) = sink.wait_for(1)
    assert received.recipients == ["second@sink.test"]
    wait_status(gateway.engine, "sent", 1)
    time.sleep(0.5)  # a wrongly released message would be sent within this
    assert len(sink.messages) == 1
    assert _statuses(gateway, ids["first"]) == {"first@sink.test": "held"} == {
        k.replace("third", "first"): v for k, v in _statuses(gateway, ids["third"]).items()
    }
    with gateway.engine.connect() as connection:
        (event, *_) = history(connection, HOSTING)
        state = hosting_store.find_hosting(connection, name=HOSTING).state.value
    assert (event["action"], event["actor"], event["to_state"], state) == ("release-one", "operator", "spam", "spam")
    assert f"message {ids['second']}" in event["reason"] and OPERATOR in event["reason"] and "support ticket 42" in event["reason"]
    with gateway.engine.connect() as connection:  # and in the audit log, with the operator and the note
        (logged,), _ = audit.entries(connection, action="message.release", hosting=HOSTING)
    assert (logged["actor"], logged["by_operator"], logged["target"]) == (f"operator {OPERATOR}", True, f"message {ids['second']}")
    assert logged["after"]["recipients"] == 1 and "support ticket 42" in logged["after"]["reason"]


def test_the_operator_deletes_one_and_it_is_never_sent(gateway: RunningGateway, area, sink: Sink) -> None:
    ids = _held_three(gateway)
    browser = _operator(area)
    done = _act(browser, ids["first"], "delete", confirm="yes")
    assert "The email is deleted" in _flash(browser, done)
    assert _statuses(gateway, ids["first"]) == {"first@sink.test": "purged"}
    assert "The body of this email is no longer stored." in unescape(browser.get(f"{MAIL}/{ids['first']}").text)
    again = _act(browser, ids["first"], "delete", confirm="yes")
    assert "Nothing of this email is waiting to be sent." in _flash(browser, again)
    with for_writing(gateway.engine).begin() as connection:
        change_state(connection, HOSTING, Action.UNBLOCK, Actor.CUSTOMER, time.time())
    received = sink.wait_for(2)
    wait_status(gateway.engine, "sent", 2)
    assert sorted(r for m in received for r in m.recipients) == ["second@sink.test", "third@sink.test"]
    with gateway.engine.connect() as connection:
        deleted = [e for e in history(connection, HOSTING) if e["action"] == "delete-one"]
    assert len(deleted) == 1 and deleted[0]["actor"] == "operator" and OPERATOR in deleted[0]["reason"]


REFUSED: set[str] = set()


@pytest.fixture
def refusing_sink(sink: Sink) -> Sink:
    REFUSED.clear()
    REFUSED.update({"gone@sink.test", "lost@sink.test"})
    sink.behaviour = Behaviour(rcpt=lambda address: "550 5.7.1 refused by policy" if address in REFUSED else "250 2.1.5 ok")
    return sink


def test_the_operator_sends_again_to_the_chosen_failed_recipient_only(gateway: RunningGateway, area, refusing_sink: Sink) -> None:
    submit(gateway.smtp_port, b"Subject: order\r\n\r\nyour order\r\n", ["gone@sink.test", "lost@sink.test", "kept@sink.test"])
    wait_status(gateway.engine, "bounced", 2)
    (message_id,) = _ids(gateway).values()
    REFUSED.clear()
    browser = _operator(area)
    listed = browser.get(MAIL, params={"status": "bounced"})
    assert f'href="{MAIL}/{message_id}"' in listed.text
    page = browser.get(f"{MAIL}/{message_id}")
    assert 'name="to" value="gone@sink.test"' in page.text and 'value="kept@sink.test"' not in page.text
    done = _act(browser, message_id, "resend", confirm="yes", to="gone@sink.test")
    assert "sent again to 1 recipient" in _flash(browser, done)
    received = refusing_sink.wait_for(2)
    assert received[-1].recipients == ["gone@sink.test"]
    wait_status(gateway.engine, "sent", 2)
    assert _statuses(gateway, message_id)["lost@sink.test"] == "bounced"
    with gateway.engine.connect() as connection:
        (event, *_) = history(connection, HOSTING)
    assert (event["action"], event["actor"]) == ("send-again", "operator")


def test_a_failed_email_whose_body_is_gone_says_so_to_the_operator(gateway: RunningGateway, area, refusing_sink: Sink) -> None:
    submit(gateway.smtp_port, b"Subject: lost\r\n\r\nthe body\r\n", ["gone@sink.test"])
    wait_status(gateway.engine, "bounced", 1)
    (message_id,) = _ids(gateway).values()
    browser = _operator(area)
    deadline = time.monotonic() + 10
    while "resend-gone" not in (page := browser.get(f"{MAIL}/{message_id}")).text:
        assert time.monotonic() < deadline, "the page never said the body is gone"
        time.sleep(0.1)
    assert "This email cannot be sent again: its body is no longer stored." in unescape(page.text)
    assert f"{message_id}/resend" not in page.text
    refused = _act(browser, message_id, "resend", confirm="yes")
    assert "no longer stored: it cannot be sent again" in _flash(browser, refused)


def test_bad_addresses_and_forms_answer_a_clear_error(gateway: RunningGateway, area) -> None:
    browser = _operator(area)
    csrf = browser.csrf(browser.get(MAIL))
    for path in ("/x", "/-1", "/99999999999999999999", "/12345"):
        assert browser.get(MAIL + path).status_code == 404, path
    assert browser.get(MAIL, params={"status": "sent"}).status_code == 400
    assert browser.get(MAIL, params={"status": "lost"}).status_code == 400
    assert browser.get("/operator/hostings/ghost.example/mail").status_code == 404
    assert browser.get("/operator/hostings/_system/mail").status_code == 404
    for action in ("purge", "release", "x" * 300):
        answer = browser.post(f"{MAIL}/12345/{action}", {"csrf": csrf, "confirm": "yes"})
        assert answer.status_code == 404, action
    assert browser.post(f"{MAIL}/1/release", {"csrf": "forged", "confirm": "yes"}).status_code == 403
    assert browser.post(f"{MAIL}/1/resend", {"csrf": csrf, "confirm": "yes", "note": "x" * 501}).status_code == 422
    customer = area()
    customer.login(A)
    assert customer.get(MAIL).status_code == 403 and customer.get(f"{EXPORT}/log").status_code == 403


def test_the_operator_exports_a_hostings_log_bounces_and_suppressions(gateway: RunningGateway, area) -> None:
    now = time.time()
    fill_log(gateway.engine, HOSTING, 40, subject="recent", at=now - 3600)
    fill_log(gateway.engine, HOSTING, 8, subject="old", at=now - 90 * 86400)
    with for_writing(gateway.engine).begin() as connection:
        hosting_id = hosting_store.find_hosting(connection, name=HOSTING).id
        suppressions.add(connection, hosting_id, "=evil@sink.test", now, None)
    browser = _operator(area)
    rows = list(csv.DictReader(io.StringIO(browser.get(f"{EXPORT}/log", params={"format": "csv"}).text)))
    assert len(rows) == 40 and {r["subject"] for r in rows} == {"recent"}
    bounced = json.loads(browser.get(f"{EXPORT}/bounces", params={"format": "json", "status": "bounced"}).text)
    assert len(bounced) == 10 and {r["status"] for r in bounced} == {"bounced"}
    old_day = time.strftime("%Y-%m-%d", time.gmtime(now - 90 * 86400))
    older = json.loads(browser.get(f"{EXPORT}/log", params={"format": "json", "since": old_day, "until": old_day}).text)
    assert len(older) == 8
    listed = browser.get(f"{EXPORT}/suppressions", params={"format": "csv"})
    assert listed.headers["content-disposition"].startswith(f'attachment; filename="{HOSTING}-suppressions-')
    assert "'=evil@sink.test" in listed.text
    for params, text in (
        ({"since": "2020-01-01", "until": "2026-01-01"}, "The window is longer than 366 days"),
        ({"since": "soon"}, "Not a date or time"),
        ({"format": "xml"}, "Unknown format"),
    ):
        answer = browser.get(f"{EXPORT}/log", params={"format": "csv", **params})
        assert answer.status_code == 400 and text in unescape(answer.text), params
    assert browser.get(f"{EXPORT}/everything").status_code == 404
    assert browser.get("/operator/hostings/ghost.example/export/log").status_code == 404
