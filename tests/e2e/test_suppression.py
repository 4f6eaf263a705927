"""The suppression list and the notices to senders with real parts: a gateway, a loopback
receiving server that answers 550 5.1.1 for some recipients, the store on both backends."""

from __future__ import annotations

import email
import email.policy
import time

import pytest
from sqlalchemy import select

from scriptmail.store import suppressions
from scriptmail.store.engine import for_writing
from scriptmail.store.hostings import find_hosting
from scriptmail.store.schema import notice_events
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.sink import Behaviour, Sink

DAY = 86400


class Clock:
    """Wall time, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def asked(sink: Sink) -> list[str]:
    """Every RCPT the sink was asked; addresses starting with `gone` do not exist there."""
    seen: list[str] = []

    def rcpt(address: str) -> str:
        seen.append(address)
        return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address if address.startswith("gone") else "250 2.1.5 ok"

    sink.behaviour = Behaviour(rcpt=rcpt)
    return seen


@pytest.fixture
def gateway(make_gateway, clock: Clock) -> RunningGateway:
    return make_gateway(clock=clock, control={"notice_interval": 0.2})


def _notices(sink: Sink) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(m.data, policy=email.policy.default) for m in sink.messages if m.mail_from == ""]


def _wait_notices(sink: Sink, count: int, timeout: float = 20.0) -> list[email.message.EmailMessage]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(found := _notices(sink)) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{len(_notices(sink))} notice(s) arrived, expected {count}")


def test_an_unknown_user_is_asked_once_and_its_sender_gets_one_rfc3464_notice(gateway: RunningGateway, sink: Sink, asked: list[str]) -> None:
    message = b"Subject: newsletter\r\nMessage-ID: <n1@sink.test>\r\n\r\nhello\r\n"
    submit(gateway.smtp_port, message, ["gone@sink.test", "gone.too@sink.test", "here@sink.test"], sender="web@sink.test")
    wait_status(gateway.engine, "bounced", 2)

    # Both failed recipients of the message share one notice, to the envelope sender, from <>.
    (dsn,) = _wait_notices(sink, 1)
    assert dsn["To"] == "web@sink.test" and dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    readable, status, headers = dsn.iter_parts()
    assert readable.get_content_type() == "text/plain" and "newsletter" in readable.get_content()
    assert status.get_content_type() == "message/delivery-status"
    per_message, *per_recipient = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; gateway.test" and per_message["Arrival-Date"]
    assert sorted(block["Final-Recipient"] for block in per_recipient) == ["rfc822; gone.too@sink.test", "rfc822; gone@sink.test"]
    for block in per_recipient:
        assert (block["Action"], block["Status"], block["Remote-MTA"]) == ("failed", "5.1.1", "dns; 127.0.0.1")
        assert str(block["Diagnostic-Code"]).strip().startswith("smtp; 550 5.1.1")  # it may be folded
    assert headers.get_content_type() == "text/rfc822-headers" and "Message-ID: <n1@sink.test>" in headers.get_content()

    # The next message to them is not attempted at all: their status says why.
    submit(gateway.smtp_port, b"Subject: again\r\n\r\nhi\r\n", ["gone@sink.test", "here@sink.test"], sender="web@sink.test")
    (suppressed,) = wait_status(gateway.engine, "suppressed", 1)
    wait_status(gateway.engine, "sent", 3)  # here@ twice, and the notice
    assert "suppression list" in suppressed["last_text"] and "5.1.1" in suppressed["last_text"]
    assert asked.count("gone@sink.test") == 1
    time.sleep(0.5)
    assert len(_notices(sink)) == 1  # no second notice for the suppressed address

    # The customer removes the entry: the next message goes to the server again.
    with for_writing(gateway.engine).begin() as connection:
        hosting_id = find_hosting(connection, name=HOSTING).id
        assert suppressions.remove(connection, hosting_id, "gone@sink.test", gateway.gateway.clock()).found
    submit(gateway.smtp_port, b"Subject: third\r\n\r\nhi\r\n", ["gone@sink.test"], sender="web@sink.test")
    wait_status(gateway.engine, "bounced", 3)
    assert asked.count("gone@sink.test") == 2


def test_an_entry_expires_after_suppression_days(gateway: RunningGateway, sink: Sink, asked: list[str], clock: Clock) -> None:
    submit(gateway.smtp_port, b"Subject: one\r\n\r\nhi\r\n", ["gone@sink.test"], sender="web@sink.test")
    wait_status(gateway.engine, "bounced", 1)
    clock.offset = 29 * DAY
    submit(gateway.smtp_port, b"Subject: two\r\n\r\nhi\r\n", ["gone@sink.test"], sender="web@sink.test")
    wait_status(gateway.engine, "suppressed", 1)
    clock.offset = 31 * DAY
    submit(gateway.smtp_port, b"Subject: three\r\n\r\nhi\r\n", ["gone@sink.test"], sender="web@sink.test")
    wait_status(gateway.engine, "bounced", 2)
    assert asked.count("gone@sink.test") == 2


def test_no_notice_to_the_null_sender_and_at_most_the_hourly_cap_per_sender(make_gateway, sink: Sink, asked: list[str]) -> None:
    gateway = make_gateway(control={"notice_interval": 0.2, "dsn_per_sender_hour": 2})
    # A sender that does not exist itself: its notice bounces, and that bounce (null sender) is
    # not notified to anyone.
    submit(gateway.smtp_port, b"Subject: lost\r\n\r\nhi\r\n", ["gone.0@sink.test"], sender="gone.sender@sink.test")
    for n in range(1, 5):
        submit(gateway.smtp_port, f"Subject: m{n}\r\n\r\nhi\r\n".encode(), [f"gone.{n}@sink.test"], sender="web@sink.test")
    wait_status(gateway.engine, "bounced", 6)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with gateway.engine.connect() as connection:
            outcomes = sorted(e.outcome for e in connection.execute(select(notice_events)) if e.done_at is not None)
        if len(outcomes) == 6:
            break
        time.sleep(0.1)
    assert outcomes == ["hourly-cap", "hourly-cap", "null-sender", "sent", "sent", "sent"]
    assert asked.count("gone.sender@sink.test") == 1  # the one notice to it, refused
    assert len(_wait_notices(sink, 2)) == 2
    time.sleep(0.5)
    assert all(n["To"] == "web@sink.test" for n in _notices(sink)) and len(_notices(sink)) == 2


def test_no_notice_for_a_bounce_while_the_hosting_was_blocked_as_spam_even_once_lifted(gateway: RunningGateway, sink: Sink) -> None:
    from scriptmail.control.states import Action, Actor
    from scriptmail.store.hosting_control import change_state

    def rcpt(address: str) -> str:
        # The policy blocks the hosting as spam while its mail is being delivered: the refusal
        # that follows is mail of a compromised site, and its notice would be backscatter.
        with for_writing(gateway.engine).begin() as connection:
            change_state(connection, HOSTING, Action.DETECT_SPAM, Actor.POLICY, time.time(), reason="test")
        return "550 5.1.1 <%s>: User unknown" % address

    sink.behaviour = Behaviour(rcpt=rcpt)
    submit(gateway.smtp_port, b"Subject: forged\r\n\r\nhi\r\n", ["gone.trap@sink.test"], sender="web@shop.example")
    wait_status(gateway.engine, "bounced", 1)
    with for_writing(gateway.engine).begin() as connection:
        change_state(connection, HOSTING, Action.UNBLOCK, Actor.OPERATOR, time.time())  # lifted before the notice is written
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with gateway.engine.connect() as connection:
            outcomes = [e.outcome for e in connection.execute(select(notice_events)) if e.done_at is not None]
        if outcomes:
            break
        time.sleep(0.1)
    assert outcomes == ["spam-block"]
    time.sleep(0.5)
    assert _notices(sink) == []
