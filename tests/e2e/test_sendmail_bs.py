"""`sendmail -bs` (Symfony Mailer's and Laravel's default): the SMTP server's bad-input tests, over a pipe.

The identity is the caller's uid, through the socket; the dialogue is the network server's.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from sqlalchemy import func, select

from scriptmail.store.schema import messages
from tests.e2e.test_smtp_bad_input import RELAY_FORMS, SMUGGLING, SOURCE_ROUTES
from tests.support.gateway import RunningGateway, wait_status
from tests.support.pipe_smtp import SENDMAIL, PipeSession
from tests.support.sink import Sink


def env_of(gateway: RunningGateway) -> dict[str, str]:
    intake = gateway.settings.intake
    return os.environ | {"SCRIPTMAIL_SOCKET": str(intake.socket), "SCRIPTMAIL_MAILDROP": str(intake.maildrop)}


def session_of(gateway: RunningGateway, max_size: int | None = None) -> PipeSession:
    env = env_of(gateway)
    if max_size:
        env["SCRIPTMAIL_MAX_MESSAGE_SIZE"] = str(max_size)
    return PipeSession(env)


def open_transaction(gateway: RunningGateway, recipient: str = "victim@sink.test", **kwargs) -> PipeSession:
    session = session_of(gateway, **kwargs)
    assert session.command("EHLO symfony.test")[0] == 250
    assert session.command("MAIL FROM:<web@shop.example>")[0] == 250
    assert session.command(f"RCPT TO:<{recipient}>")[0] == 250
    assert session.command("DATA")[0] == 354
    return session


def count_messages(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(messages)).scalar_one()


def test_a_symfony_style_session_is_delivered_under_the_callers_uid(gateway: RunningGateway, sink: Sink) -> None:
    session = session_of(gateway)
    assert session.greeting[0] == 220
    code, ehlo = session.command("EHLO [127.0.0.1]")
    assert code == 250 and "PIPELINING" in ehlo and "AUTH" not in ehlo and "STARTTLS" not in ehlo
    assert session.command("MAIL FROM:<web@shop.example>")[0] == 250
    assert session.command("RCPT TO:<buyer@sink.test>")[0] == 250
    assert session.command("DATA")[0] == 354
    session.send(b"From: web@shop.example\r\nSubject: order\r\n\r\nthanks\r\n..leading dot\r\n.\r\n")
    code, text = session.reply()
    assert code == 250 and text.startswith("2.0.0 queued as ")
    assert session.close() == 0
    (received,) = sink.wait_for(1)
    assert received.data.endswith(b"thanks\r\n.leading dot\r\n")
    (row,) = wait_status(gateway.engine, "sent", 1)
    assert row["origin"] == "sendmail"


def test_pipelined_commands_are_answered_in_order_and_two_messages_go_in_one_session(gateway: RunningGateway, sink: Sink) -> None:
    session = session_of(gateway)
    session.send(
        b"EHLO laravel.test\r\nMAIL FROM:<web@shop.example>\r\nRCPT TO:<one@sink.test>\r\nRCPT TO:<bad@[10.0.0.1]>\r\n"
        b"RCPT TO:<two@sink.test>\r\nDATA\r\nSubject: first\r\n\r\n1\r\n.\r\n"
        b"MAIL FROM:<web@shop.example>\r\nRCPT TO:<three@sink.test>\r\nDATA\r\nSubject: second\r\n\r\n2\r\n.\r\nQUIT\r\n"
    )
    codes = [session.reply()[0] for _ in range(11)]
    assert codes == [250, 250, 250, 553, 250, 354, 250, 250, 250, 354, 250]
    assert session.reply()[0] == 221
    assert session.process.wait(30) == 0
    received = sink.wait_for(2)
    assert sorted(tuple(m.recipients) for m in received) == [("one@sink.test", "two@sink.test"), ("three@sink.test",)]


def test_a_whole_dialogue_written_at_once_and_closed_is_still_answered(gateway: RunningGateway, sink: Sink) -> None:
    dialogue = b"HELO x\r\nMAIL FROM:<web@shop.example>\r\nRCPT TO:<a@sink.test>\r\nDATA\r\nSubject: s\r\n\r\nb\r\n.\r\n"
    result = subprocess.run([SENDMAIL, "-bs", "-i"], input=dialogue, capture_output=True, env=env_of(gateway), timeout=60)
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1].startswith(b"250 2.0.0 queued as ")
    sink.wait_for(1)


def test_bad_commands_get_errors_and_the_session_goes_on(gateway: RunningGateway, sink: Sink) -> None:
    session = session_of(gateway)
    assert session.command("FOO bar")[0] == 500
    assert session.command("MAIL FROM:<web@shop.example>")[0] == 503  # no HELO yet
    assert session.command("EHLO x")[0] == 250
    assert session.command("RCPT TO:<a@sink.test>")[0] == 503  # no MAIL yet
    assert session.command("AUTH PLAIN AHNob3AuZXhhbXBsZQBzM2NyZXQ=")[0] == 538
    assert session.command("DATA")[0] == 503
    assert session.command("MAIL FROM:<web@shop.example>")[0] == 250
    assert session.command("MAIL FROM:<web@shop.example>")[0] == 503  # nested MAIL
    assert session.command("RSET")[0] == 250
    assert session.command("NOOP")[0] == 250
    session.close()
    assert count_messages(gateway.engine) == 0


@pytest.mark.parametrize("sequence", SMUGGLING, ids=[repr(s) for s in SMUGGLING])
def test_smuggling_sequences_never_leave_as_a_second_message(gateway: RunningGateway, sink: Sink, sequence: bytes) -> None:
    session = open_transaction(gateway)
    smuggled = b"MAIL FROM:<ceo@bank.example>\r\nRCPT TO:<victim@sink.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nwire money\r\n"
    session.send(b"Subject: innocent\r\n\r\nhello" + sequence + smuggled + b".\r\n")
    code, text = session.reply()
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


@pytest.mark.parametrize("address", [form for form in RELAY_FORMS if form not in SOURCE_ROUTES] + ["plainword", "a@b", "a@@sink.test", "x" * 65 + "@sink.test"])
def test_routing_tricks_and_bad_addresses_are_refused(gateway: RunningGateway, address: str) -> None:
    session = session_of(gateway)
    session.command("EHLO x")
    assert session.command("MAIL FROM:<web@shop.example>")[0] == 250
    code, text = session.command(f"RCPT TO:<{address}>")
    session.close()
    assert 500 <= code < 600, (code, text)


@pytest.mark.parametrize("address", SOURCE_ROUTES)
def test_source_routes_are_ignored_as_rfc_5321_asks(gateway: RunningGateway, sink: Sink, address: str) -> None:
    session = open_transaction(gateway, address)
    session.send(b"Subject: routed\r\n\r\nhi\r\n.\r\n")
    assert session.reply()[0] == 250
    session.close()
    (received,) = sink.wait_for(1)
    assert received.recipients == ["victim@sink.test"]


def test_null_sender_is_refused_for_submission(gateway: RunningGateway) -> None:
    session = session_of(gateway)
    session.command("EHLO x")
    code, text = session.command("MAIL FROM:<>")
    session.close()
    assert code == 553 and "null" in text


def test_oversize_message_is_refused_and_not_stored(gateway: RunningGateway) -> None:
    session = open_transaction(gateway, max_size=64 * 1024)
    session.send(b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 80 + b".\r\n")
    code, text = session.reply()
    session.close()
    assert code == 552, text
    assert count_messages(gateway.engine) == 0


def test_more_than_100_recipients_get_452_and_the_first_100_are_kept(gateway: RunningGateway, sink: Sink) -> None:
    session = session_of(gateway)
    session.command("EHLO x")
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
    session = session_of(gateway)
    session.command("EHLO x")
    assert session.command("MAIL FROM:<" + "a" * 600 + "@shop.example>")[0] == 500
    session.command("MAIL FROM:<web@shop.example>")
    session.command("RCPT TO:<a@sink.test>")
    session.command("DATA")
    session.send(b"Subject: long\r\n\r\n" + b"y" * 2000 + b"\r\n.\r\n")
    code, text = session.reply()
    session.close()
    assert code == 500 and "too long" in text.lower()
    assert count_messages(gateway.engine) == 0


def test_a_looping_message_is_refused_with_the_daemons_reason(gateway: RunningGateway) -> None:
    session = open_transaction(gateway)
    hops = b"".join(b"Received: from hop%d.test by hop%d.test; Sun, 29 Nov 2026 10:00:00 +0000\r\n" % (n, n) for n in range(30))
    session.send(hops + b"Subject: loop\r\n\r\nx\r\n.\r\n")
    code, text = session.reply()
    session.close()
    assert code == 554 and "loop" in text
    assert count_messages(gateway.engine) == 0


def test_with_the_daemon_down_250_means_the_maildrop_has_it(make_gateway, sink: Sink) -> None:
    gateway = make_gateway()
    gateway.stop()
    session = open_transaction(gateway, "late@sink.test")
    session.send(b"Subject: while down\r\n\r\nkeep me\r\n.\r\n")
    code, text = session.reply()
    assert code == 250 and "maildrop" in text
    assert session.close() == 0
    assert len(list((gateway.settings.intake.maildrop / "new").iterdir())) == 1
    make_gateway()
    assert sink.wait_for(1)[0].recipients == ["late@sink.test"]


@pytest.mark.skipif(os.geteuid() != 0, reason="calling as another uid needs root")
def test_a_caller_whose_uid_has_no_hosting_gets_550_and_nothing_is_stored(gateway: RunningGateway) -> None:
    for parent in gateway.settings.intake.socket.parents:  # the test's directories are root's 0700
        if parent != parent.parent:
            os.chmod(parent, os.stat(parent).st_mode | 0o011)
    env = env_of(gateway)
    session = PipeSession(env, command=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SENDMAIL, "-bs"])
    session.command("EHLO x")
    session.command("MAIL FROM:<web@shop.example>")
    session.command("RCPT TO:<a@sink.test>")
    assert session.command("DATA")[0] == 354
    session.send(b"Subject: who am I\r\n\r\nx\r\n.\r\n")
    code, text = session.reply()
    session.close()
    assert code == 550 and "uid 65534 is not assigned to any hosting" in text
    assert count_messages(gateway.engine) == 0
