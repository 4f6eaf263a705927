"""Hostile and malformed SMTP input: a clear refusal, nothing half-accepted, nothing smuggled out."""

from __future__ import annotations

import smtplib
import ssl
import time

import psycopg
import pytest
from sqlalchemy import func, select

from scriptmail.store.schema import messages
from tests.support.gateway import HOSTING, PASSWORD, RunningGateway, submit, wait_status
from tests.support.raw_smtp import RawSession
from tests.support.sink import Sink
from tests.support.stores import PG_ADMIN_URL

# REFERENCE.md "Protocol facts": sequences that some servers read as the end of DATA.
SMUGGLING = [
    b"\n.\n", b"\n.\r", b"\r.\n", b"\r.\r", b"\n.\r\n", b"\r.\r\n", b"\r\n\x00.\r\n",
    b"\r\n.\r\r\n", b"\r\r\n.\r\r\n", b"\r\n.\n", b"\r\n.\r",
]


def _open_transaction(port: int, recipient: str = "victim@sink.test") -> RawSession:
    session = RawSession(port)
    assert session.login(HOSTING, PASSWORD)[0] == 235
    assert session.command("MAIL FROM:<web@shop.example>")[0] == 250
    assert session.command(f"RCPT TO:<{recipient}>")[0] == 250
    assert session.command("DATA")[0] == 354
    return session


def _count_messages(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(messages)).scalar_one()


@pytest.mark.parametrize("sequence", SMUGGLING, ids=[repr(s) for s in SMUGGLING])
def test_smuggling_sequences_never_leave_as_a_second_message(gateway: RunningGateway, sink: Sink, sequence: bytes) -> None:
    session = _open_transaction(gateway.smtp_port)
    smuggled = (
        b"MAIL FROM:<ceo@bank.example>\r\nRCPT TO:<victim@sink.test>\r\nDATA\r\n"
        b"Subject: smuggled\r\n\r\nwire money\r\n"
    )
    session.send(b"Subject: innocent\r\n\r\nhello" + sequence + smuggled + b".\r\n")
    code, text = session.reply()
    # A well-formed second transaction in the same session still works.
    assert session.command("RSET")[0] == 250
    assert session.command("MAIL FROM:<web@shop.example>")[0] == 250
    assert session.command("RCPT TO:<friend@sink.test>")[0] == 250
    assert session.command("DATA")[0] == 354
    session.send(b"Subject: follow-up\r\n\r\nok\r\n.\r\n")
    assert session.reply()[0] == 250
    session.close()

    if code == 250:
        expected = 2
    else:
        assert code == 554, text
        expected = 1
    received = sink.wait_for(expected)
    time.sleep(0.3)
    assert len(sink.messages) == expected
    for message in received:
        assert b"Subject: smuggled" not in message.raw.split(b"\r\n\r\n")[0]
        stripped = message.raw.replace(b"\r\n", b"")
        assert b"\r" not in stripped and b"\n" not in stripped and b"\x00" not in stripped


# nmap's open-relay forms (REFERENCE.md), with this gateway's sink as the target.
RELAY_FORMS = [
    "victim%sink.test@[127.0.0.1]",
    "victim%sink.test@gateway.test",
    '"victim@sink.test"',
    '"victim%sink.test"',
    "victim@sink.test@[127.0.0.1]",
    '"victim@sink.test"@[127.0.0.1]',
    "@[127.0.0.1]:victim@sink.test",
    "@gateway.test:victim@sink.test",
    "sink.test!victim",
    "sink.test!victim@gateway.test",
]


@pytest.mark.parametrize("address", RELAY_FORMS)
def test_relay_forms_are_refused_without_auth(gateway: RunningGateway, address: str) -> None:
    session = RawSession(gateway.smtp_port)
    session.command("EHLO attacker.test")
    mail = session.command("MAIL FROM:<attacker@evil.test>")
    rcpt = session.command(f"RCPT TO:<{address}>")
    session.close()
    assert mail[0] == 530
    assert rcpt[0] in (503, 530, 553, 501), rcpt


SOURCE_ROUTES = [form for form in RELAY_FORMS if form.startswith("@")]


@pytest.mark.parametrize("address", [form for form in RELAY_FORMS if form not in SOURCE_ROUTES] + ["plainword", "a@b", "a@@sink.test", "a b@sink.test", "x" * 65 + "@sink.test", "a@" + "b" * 64 + ".test"])
def test_routing_tricks_and_bad_addresses_are_refused_even_with_auth(gateway: RunningGateway, address: str) -> None:
    session = RawSession(gateway.smtp_port)
    session.login(HOSTING, PASSWORD)
    assert session.command("MAIL FROM:<web@shop.example>")[0] == 250
    code, text = session.command(f"RCPT TO:<{address}>")
    session.close()
    assert 500 <= code < 600, (code, text)


@pytest.mark.parametrize("address", SOURCE_ROUTES)
def test_source_routes_are_ignored_as_rfc_5321_asks(gateway: RunningGateway, sink: Sink, address: str) -> None:
    """RFC 5321 §3.3: a server must accept the syntax and should ignore the route; the mail goes
    to the final address only, and only for an authenticated hosting."""
    session = _open_transaction(gateway.smtp_port, address)
    session.send(b"Subject: routed\r\n\r\nhi\r\n.\r\n")
    assert session.reply()[0] == 250
    session.close()
    (received,) = sink.wait_for(1)
    assert received.recipients == ["victim@sink.test"]


def test_null_sender_is_refused_for_submission(gateway: RunningGateway) -> None:
    session = RawSession(gateway.smtp_port)
    session.login(HOSTING, PASSWORD)
    code, text = session.command("MAIL FROM:<>")
    session.close()
    assert code == 553 and "null" in text


def test_oversize_message_is_refused_and_not_stored(make_gateway, sink: Sink) -> None:
    gateway = make_gateway(intake={"max_message_size": 64 * 1024})
    session = _open_transaction(gateway.smtp_port)
    session.send(b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 80 + b".\r\n")
    code, text = session.reply()
    session.close()
    assert code == 552, text
    assert _count_messages(gateway.engine) == 0


def test_a_large_stuffed_body_in_odd_writes_arrives_whole_with_commands_pipelined_after_its_dot(
    gateway: RunningGateway, sink: Sink
) -> None:
    # Lines of every length around the reader's 1,001-byte limit, many starting with a dot, sent in
    # writes that cut the stream anywhere (inside a CRLF, between a line's dot and its end).
    lines = [(b"." if n % 3 == 0 else b"") + b"%d:" % n + b"z" * (n * 37 % 990) + (b"." if n % 5 == 0 else b"") for n in range(700)]
    content = b"Subject: large\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    wire = content.replace(b"\r\n.", b"\r\n..") + b".\r\nRSET\r\nNOOP\r\n"
    session = _open_transaction(gateway.smtp_port)
    position = 0
    for size in (1, 2, 3, 1000, 1001, 1002, 4093):
        session.send(wire[position : position + size])
        position += size
        time.sleep(0.01)
    session.send(wire[position:])
    assert session.reply()[0] == 250
    assert session.reply()[0] == 250  # RSET and NOOP came in the same write as the final dot
    assert session.reply()[0] == 250
    session.close()
    (received,) = sink.wait_for(1)
    head, _, text = received.data.partition(b"\r\n\r\n")
    assert b"\r\nSubject: large" in head
    assert text == content.partition(b"\r\n\r\n")[2]  # every line as the client meant it


def test_a_connection_closed_inside_data_keeps_nothing_and_the_server_goes_on(gateway: RunningGateway, sink: Sink) -> None:
    session = _open_transaction(gateway.smtp_port)
    session.send(b"Subject: cut\r\n\r\nhalf a message\r\n.")
    session.sock.close()
    time.sleep(0.3)
    assert _count_messages(gateway.engine) == 0
    submit(gateway.smtp_port, b"Subject: after\r\n\r\nfine\r\n", ["friend@sink.test"])
    (received,) = sink.wait_for(1)
    assert b"Subject: after" in received.data


def test_more_than_100_recipients_get_452_and_the_first_100_are_kept(gateway: RunningGateway, sink: Sink) -> None:
    session = RawSession(gateway.smtp_port)
    session.login(HOSTING, PASSWORD)
    session.command("MAIL FROM:<web@shop.example>")
    codes = [session.command(f"RCPT TO:<r{i}@sink.test>")[0] for i in range(101)]
    assert codes[:100] == [250] * 100 and codes[100] == 452
    assert session.command("DATA")[0] == 354
    session.send(b"Subject: many\r\n\r\nhi\r\n.\r\n")
    assert session.reply()[0] == 250
    session.close()
    (received,) = sink.wait_for(1)
    assert len(received.recipients) == 100


def test_overlong_lines_are_refused(gateway: RunningGateway) -> None:
    session = RawSession(gateway.smtp_port)
    session.login(HOSTING, PASSWORD)
    assert session.command("MAIL FROM:<" + "a" * 600 + "@shop.example>")[0] == 500
    session.command("MAIL FROM:<web@shop.example>")
    session.command("RCPT TO:<a@sink.test>")
    session.command("DATA")
    session.send(b"Subject: long\r\n\r\n" + b"y" * 2000 + b"\r\n.\r\n")
    code, text = session.reply()
    session.close()
    assert code == 500 and "too long" in text.lower()
    assert _count_messages(gateway.engine) == 0


def test_auth_over_starttls_works(gateway: RunningGateway, sink: Sink) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=15) as client:
        client.starttls(context=context)
        client.login(HOSTING, PASSWORD)
        client.sendmail("web@shop.example", ["tls@sink.test"], b"Subject: tls\r\n\r\nencrypted\r\n")
    sink.wait_for(1)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_database_lost_mid_session_answers_451(gateway: RunningGateway, database_url: str) -> None:
    session = _open_transaction(gateway.smtp_port)
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    session.send(b"Subject: during an outage\r\n\r\nkeep me\r\n.\r\n")
    code, text = session.reply()
    session.close()
    assert code == 451, text



@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_delivery_and_intake_carry_on_after_the_database_drops_every_connection(gateway: RunningGateway, sink: Sink, database_url: str) -> None:
    """What a PostgreSQL restart or failover looks like to scriptmail: every session killed at once."""
    submit(gateway.smtp_port, b"Subject: before\r\n\r\nx\r\n", ["one@sink.test"])
    sink.wait_for(1)
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
        ).fetchone()[0]
    assert killed >= 1
    time.sleep(1.5)  # the delivery agent polls (and fails to claim) meanwhile
    for _ in range(5):  # a 451 is the documented answer while connections are re-made
        try:
            submit(gateway.smtp_port, b"Subject: after\r\n\r\nx\r\n", ["two@sink.test"])
            break
        except smtplib.SMTPDataError as error:
            assert error.smtp_code == 451
    received = sink.wait_for(2, timeout=30)
    assert [m.recipients for m in received] == [["one@sink.test"], ["two@sink.test"]]
    wait_status(gateway.engine, "sent", 2)


def test_a_looping_message_is_refused(gateway: RunningGateway) -> None:
    session = _open_transaction(gateway.smtp_port)
    session.send(b"".join(b"Received: from hop%d.test by hop%d.test; Sun, 29 Nov 2026 10:00:00 +0000\r\n" % (n, n) for n in range(30)) + b"Subject: loop\r\n\r\nx\r\n.\r\n")
    code, text = session.reply()
    session.close()
    assert code == 554 and "loop" in text
    assert _count_messages(gateway.engine) == 0
