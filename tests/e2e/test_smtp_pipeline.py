"""Whole pipeline over real sockets: a script submits by SMTP, a sink on loopback receives."""

from __future__ import annotations

import smtplib
import time

import pytest
from sqlalchemy import select

from scriptmail.store.schema import attempts, bodies, recipients
from tests.support.gateway import RunningGateway, submit, wait_status
from tests.support.sink import Behaviour, Sink

MESSAGE = (
    b"From: Shop <web@shop.example>\r\n"
    b"To: alice@sink.test\r\n"
    b"Subject: Your order\r\n"
    b"Message-ID: <order-1@shop.example>\r\n"
    b"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
    b"X-PHP-Originating-Script: 1000:checkout.php\r\n"
    b"\r\n"
    b"Thank you.\r\n"
    b".leading dot survives\r\n"
)


def test_authenticated_submission_reaches_the_sink_byte_for_byte(gateway: RunningGateway, sink: Sink) -> None:
    submit(gateway.smtp_port, MESSAGE, ["alice@sink.test", "bob@sink.test"])

    (received,) = sink.wait_for(1)
    trace, _, rest = received.data.partition(b"\r\n\t")
    assert trace == b"Received: from shop.example by gateway.test (scriptmail) with ESMTPA;"
    assert rest.split(b"\r\n", 1)[1] == MESSAGE  # after our trace field, the message as submitted
    assert received.raw.count(b"\r\n..leading dot") == 1  # dot-stuffed on the wire
    assert sorted(received.recipients) == ["alice@sink.test", "bob@sink.test"]
    assert received.mail_from == "web@shop.example"

    sent = wait_status(gateway.engine, "sent", 2)
    assert {row["last_code"] for row in sent} == {250}
    assert {row["last_text"] for row in sent} == {"2.0.0 accepted by sink"}
    assert {row["script"] for row in sent} == {"1000:checkout.php"}
    with gateway.engine.connect() as connection:
        assert connection.execute(select(bodies)).all() == []  # freed once every recipient is final
        assert len(connection.execute(select(attempts)).all()) == 2


def test_missing_date_and_message_id_are_added(gateway: RunningGateway, sink: Sink) -> None:
    submit(gateway.smtp_port, b"Subject: bare\r\n\r\nbody\r\n", ["alice@sink.test"])
    (received,) = sink.wait_for(1)
    assert b"\r\nDate: " in b"\r\n" + received.data
    assert b"Message-ID: <" in received.data and b"@gateway.test>" in received.data


def test_temporary_failure_is_deferred_then_sent(gateway: RunningGateway, sink: Sink) -> None:
    replies = iter(["451 4.3.0 try again later"])
    sink.behaviour = Behaviour(data=lambda message: next(replies, "250 2.0.0 second time lucky"))

    submit(gateway.smtp_port, MESSAGE, ["alice@sink.test"])

    sink.wait_for(1, timeout=30)
    (sent,) = wait_status(gateway.engine, "sent", 1)
    assert sent["attempts"] == 2
    with gateway.engine.connect() as connection:
        codes = [row.code for row in connection.execute(select(attempts.c.code).order_by(attempts.c.id))]
    assert codes == [451, 250]


def test_permanent_failure_bounces_with_the_servers_words(gateway: RunningGateway, sink: Sink) -> None:
    sink.behaviour = Behaviour(rcpt=lambda address: "550 5.1.1 no such user" if address.startswith("ghost") else "250 ok")

    submit(gateway.smtp_port, MESSAGE, ["ghost@sink.test", "alice@sink.test"])

    (bounced,) = wait_status(gateway.engine, "bounced", 1)
    assert (bounced["recipient"], bounced["last_code"], bounced["last_text"]) == ("ghost@sink.test", 550, "5.1.1 no such user")
    (received,) = sink.wait_for(1)
    assert received.recipients == ["alice@sink.test"]


def test_dropped_connection_defers(gateway: RunningGateway, sink: Sink) -> None:
    sink.behaviour = Behaviour(data=lambda message: None)  # hang up instead of answering the dot

    submit(gateway.smtp_port, MESSAGE, ["alice@sink.test"])

    (deferred,) = wait_status(gateway.engine, "deferred", 1)
    assert deferred["last_code"] is None
    assert "lost" in deferred["last_text"]
    assert deferred["next_attempt_at"] > time.time() - 1


def test_unauthenticated_client_cannot_relay(gateway: RunningGateway) -> None:
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=10) as client:
        client.ehlo()
        code, text = client.mail("web@shop.example")
        assert code == 530, text


def test_wrong_password_is_refused(gateway: RunningGateway) -> None:
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login("shop.example", "wrong")
    assert refused.value.smtp_code == 535


def test_log_records_one_row_per_recipient_with_message_details(gateway: RunningGateway, sink: Sink) -> None:
    submit(gateway.smtp_port, MESSAGE, ["a1@sink.test", "a2@sink.test", "a3@sink.test"])
    rows = wait_status(gateway.engine, "sent", 3)
    assert {row["subject"] for row in rows} == {"Your order"}
    assert {row["origin"] for row in rows} == {"smtp"}
    assert len({row["queue_id"] for row in rows}) == 1
    with gateway.engine.connect() as connection:
        assert len(connection.execute(select(recipients)).all()) == 3



def test_the_mail_log_has_a_line_per_message_and_per_attempt(gateway: RunningGateway, sink: Sink, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="scriptmail")
    submit(gateway.smtp_port, MESSAGE, ["alice@sink.test"])
    wait_status(gateway.engine, "sent", 1)
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("scriptmail")]
    queued = [line for line in lines if "queued hosting=shop.example from=<web@shop.example> nrcpt=1" in line]
    sent = [line for line in lines if "to=<alice@sink.test>" in line and "status=sent (250 2.0.0 accepted by sink)" in line]
    assert len(queued) == 1 and len(sent) == 1
    assert queued[0].split(":")[0] == sent[0].split(":")[0]  # both start with the queue id
