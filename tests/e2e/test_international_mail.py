"""International mail end to end (RFC 6531, RFC 5890): UTF-8 addresses over real SMTP and the sendmail
command, IDN domains found by their A-label in a loopback DNS, and two receiving servers: one that
offers SMTPUTF8 and one that does not."""

from __future__ import annotations

import email
import email.policy
import os
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from scriptmail.international.addresses import display
from scriptmail.store.schema import messages, recipients
from tests.support.dns_server import DnsServer
from tests.support.gateway import HOSTING, PASSWORD, RunningGateway, wait_status
from tests.support.pipe_smtp import PipeSession
from tests.support.raw_smtp import RawSession
from tests.support.sink import Sink

SENDMAIL = str(Path(sys.executable).with_name("scriptmail-sendmail"))
MODERN = "xn--bcher-kva.example"  # bücher.example: its MX offers SMTPUTF8
LEGACY = "xn--mller-kva.example"  # müller.example: its MX does not


@pytest.fixture
def legacy_sink(sink: Sink) -> Iterator[Sink]:
    """A server without SMTPUTF8 on another loopback address, on the sink's port (delivery has one MX port)."""
    running = Sink(host="127.0.0.2", port=sink.port, smtputf8=False).start()
    yield running
    running.stop()


@pytest.fixture
def world(legacy_sink: Sink, make_gateway, sink: Sink) -> Iterator[RunningGateway]:
    # legacy_sink first: it must outlive the gateway, whose QUIT to a stopped server would wait 5 s.
    # The zone knows only A-labels: a lookup by the Unicode name would find nothing.
    dns_server = DnsServer(
        {
            (f"{MODERN}.", "MX"): [f"10 mx.{MODERN}."],
            (f"mx.{MODERN}.", "A"): ["127.0.0.1"],
            (f"{LEGACY}.", "MX"): ["10 mx.legacy.test."],
            ("mx.legacy.test.", "A"): ["127.0.0.2"],
        }
    ).start()
    try:
        yield make_gateway(nameservers=["127.0.0.1"], dns_port=dns_server.port, smtp_port=sink.port, connect_timeout=2)
    finally:
        dns_server.stop()


def _submit_utf8(gateway: RunningGateway, sender: str, to: list[str], message: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=30) as client:
        client.login(HOSTING, PASSWORD)
        assert client.has_extn("smtputf8")
        assert not client.sendmail(sender, to, message, mail_options=["SMTPUTF8"])


def _stored(gateway: RunningGateway) -> list[str]:
    with gateway.engine.connect() as connection:
        return sorted(connection.execute(select(recipients.c.address)).scalars())


def _count_messages(gateway: RunningGateway) -> int:
    with gateway.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(messages)).scalar_one()


def test_utf8_mail_reaches_a_server_that_offers_smtputf8_in_unicode(world: RunningGateway, sink: Sink) -> None:
    message = "From: José <josé@shop.example>\r\nTo: Jürgen <jürgen@bücher.example>\r\nSubject: Café\r\n\r\nHola\r\n".encode()
    _submit_utf8(world, "josé@shop.example", ["jürgen@bücher.example"], message)

    (received,) = sink.wait_for(1)
    assert "SMTPUTF8" in received.mail_options and "BODY=8BITMIME" in received.mail_options
    assert received.mail_from == "josé@shop.example"
    assert received.recipients == ["jürgen@bücher.example"]  # U-labels inside an SMTPUTF8 transaction
    assert "Subject: Café".encode() in received.data and "Jürgen <jürgen@bücher.example>".encode() in received.data
    (row,) = wait_status(world.engine, "sent", 1)
    assert _stored(world) == [f"jürgen@{MODERN}"]  # one spelling of the domain in the queue
    assert display(row["recipient"]) == "jürgen@bücher.example"


def test_ascii_local_part_to_an_idn_domain_goes_as_an_a_label_to_a_server_without_smtputf8(
    world: RunningGateway, legacy_sink: Sink
) -> None:
    # Given in Unicode by one client and in punycode by another: the same mailbox either way.
    _submit_utf8(
        world, "web@shop.example", ["info@müller.example"], b"To: info@xn--mller-kva.example\r\nSubject: hi\r\n\r\nx\r\n"
    )
    with smtplib.SMTP("127.0.0.1", world.smtp_port, timeout=30) as client:
        client.login(HOSTING, PASSWORD)
        assert not client.sendmail("web@shop.example", ["sales@XN--MLLER-KVA.example"], b"Subject: hi\r\n\r\ny\r\n")

    received = legacy_sink.wait_for(2)
    assert sorted(r for message in received for r in message.recipients) == [f"info@{LEGACY}", f"sales@{LEGACY}"]
    assert all("SMTPUTF8" not in message.mail_options for message in received)
    wait_status(world.engine, "sent", 2)


def test_mail_that_needs_smtputf8_bounces_with_5_6_7_when_the_server_does_not_offer_it(
    world: RunningGateway, legacy_sink: Sink
) -> None:
    _submit_utf8(world, "web@shop.example", ["jürgen@müller.example", "info@müller.example"], b"Subject: two\r\n\r\nx\r\n")
    _submit_utf8(world, "web@shop.example", ["office@müller.example"], "Subject: Grüße\r\n\r\nx\r\n".encode())

    (received,) = legacy_sink.wait_for(1)
    assert received.recipients == [f"info@{LEGACY}"]  # the ASCII copy of the first message still goes
    bounced = {row["recipient"]: row["last_text"] for row in wait_status(world.engine, "bounced", 2)}
    assert set(bounced) == {f"jürgen@{LEGACY}", f"office@{LEGACY}"}
    assert "5.6.7" in bounced[f"jürgen@{LEGACY}"] and "recipient's address is not ASCII" in bounced[f"jürgen@{LEGACY}"]
    assert "5.6.7" in bounced[f"office@{LEGACY}"] and "header fields are not ASCII" in bounced[f"office@{LEGACY}"]
    assert "does not offer" in bounced[f"office@{LEGACY}"]
    assert len(legacy_sink.messages) == 1


BAD_SENDERS = [
    ("MAIL FROM:<josé@shop.example>", "5.6.7 a non-ASCII address needs the SMTPUTF8 parameter"),
    (b"MAIL FROM:<jos\xe9@shop.example> SMTPUTF8", "not valid UTF-8"),  # Latin-1, not UTF-8
    ("MAIL FROM:<web@раypal.example> SMTPUTF8", "mixes scripts (Cyrillic, Latin)"),
    ("MAIL FROM:<web@xn--zz.example> SMTPUTF8", "not a valid internationalised name"),
    ("MAIL FROM:<web@" + "ñ" * 60 + ".example> SMTPUTF8", "not a valid internationalised name (Label too long)"),
    ("MAIL FROM:<we\u200bb@bücher.example> SMTPUTF8", "invisible or unassigned character (U+200B)"),
]
BAD_RECIPIENTS = [
    (b"RCPT TO:<info@b\xfccher.example>", "not valid UTF-8"),
    ("RCPT TO:<info@раураl.example>", "mixes scripts"),
    (b"RCPT TO:<info@xn--a.example>", "not a valid internationalised name"),
    (b"RCPT TO:<info@" + b"a" * 30 + "ü".encode() * 40 + b".example>", "Label too long"),
    ("RCPT TO:<a..ñ@bücher.example>", "invalid local part"),
]


def _reason(text: str) -> str:
    return text.encode("latin-1").decode("utf-8", errors="replace")  # RawSession reads latin-1


def test_bad_international_addresses_are_refused_clearly_and_the_session_goes_on(world: RunningGateway, sink: Sink) -> None:
    session = RawSession(world.smtp_port)
    assert session.login(HOSTING, PASSWORD)[0] == 235
    _, ehlo = session.command("EHLO client.test")
    assert "SMTPUTF8" in ehlo.splitlines() and "8BITMIME" in ehlo.splitlines()
    for command, reason in BAD_SENDERS:
        code, text = session.command(command)
        assert code == 553 and reason in _reason(text), (command, text)
    assert session.command("MAIL FROM:<josé@shop.example> SMTPUTF8")[0] == 250
    assert session.command(b"RCPT TO:<\xc3\xb1and\xc3\xba@b\xc3\xbccher.example>")[0] == 250
    for command, reason in BAD_RECIPIENTS:
        code, text = session.command(command)
        assert code == 553 and reason in _reason(text), (command, text)
    assert session.command("DATA")[0] == 354
    session.send(b"Subject: ok\r\n\r\nfine\r\n.\r\n")
    assert session.reply()[0] == 250
    # Nothing in the next message needs SMTPUTF8, so even a server that offers it gets plain ASCII.
    assert session.command("MAIL FROM:<web@shop.example>")[0] == 250
    assert session.command("RCPT TO:<first@bücher.example>")[0] == 553  # non-ASCII, undeclared
    assert session.command(f"RCPT TO:<first@{MODERN}>")[0] == 250
    assert session.command("DATA")[0] == 354
    session.send(b"Subject: ascii\r\n\r\nfine\r\n.\r\n")
    assert session.reply()[0] == 250
    session.close()
    # Nothing is lost: the good recipients of the same session get their mail, and nothing else left.
    received = {tuple(message.recipients): message for message in sink.wait_for(2)}
    assert set(received) == {("ñandú@bücher.example",), (f"first@{MODERN}",)}
    assert "SMTPUTF8" in received[("ñandú@bücher.example",)].mail_options
    assert "SMTPUTF8" not in received[(f"first@{MODERN}",)].mail_options
    assert _count_messages(world) == 2


# --- the sendmail command --------------------------------------------------------------------


def _sendmail(gateway: RunningGateway, *args: str | bytes, data: bytes) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SCRIPTMAIL_SOCKET": str(gateway.settings.intake.socket),
        "SCRIPTMAIL_MAILDROP": str(gateway.settings.intake.maildrop),
    }  # no LANG: PHP and cron run the command in the C locale
    return subprocess.run([SENDMAIL, *args], input=data, capture_output=True, env=env, timeout=30)


def test_sendmail_takes_utf8_addresses_on_the_command_line_and_in_the_headers(world: RunningGateway, sink: Sink) -> None:
    message = "To: Jürgen <jürgen@bücher.example>\nCc: ana@xn--bcher-kva.example\nSubject: Größe\n\nHallo\n".encode()
    by_arguments = _sendmail(world, "-i", "-f", "josé@shop.example", "ñandú@bücher.example", data=message)
    by_headers = _sendmail(world, "-t", "-i", "-f", "josé@shop.example", data=message)
    assert by_arguments.returncode == 0, by_arguments.stderr
    assert by_headers.returncode == 0, by_headers.stderr

    received = sink.wait_for(2)
    assert sorted(r for message in received for r in message.recipients) == [
        "ana@bücher.example", "jürgen@bücher.example", "ñandú@bücher.example",
    ]  # fmt: skip
    assert {message.mail_from for message in received} == {"josé@shop.example"}
    assert all("SMTPUTF8" in message.mail_options for message in received)
    wait_status(world.engine, "sent", 3)


def test_sendmail_refuses_bad_utf8_and_bad_idn_input_and_queues_nothing(world: RunningGateway) -> None:
    for argument, reason in [
        (b"j\xfcrgen@shop.example", b"not valid UTF-8"),
        ("info@раypal.example".encode(), b"mixes scripts"),
        (b"info@xn--zz.example", b"not a valid internationalised name"),
        (b"info@" + "ü".encode() * 64 + b".example", b"Label too long"),
    ]:
        result = _sendmail(world, "-i", argument, data=b"Subject: x\n\nbody\n")
        assert result.returncode == 65 and reason in result.stderr, (argument, result.stderr)  # EX_DATAERR
    in_headers = _sendmail(world, "-t", "-i", data=b"To: ok@sink.test, bad@b\xfccher.example\nSubject: x\n\nbody\n")
    assert in_headers.returncode == 65 and b"not valid UTF-8" in in_headers.stderr
    assert _count_messages(world) == 0


def test_sendmail_bs_offers_smtputf8_and_refuses_bad_utf8_in_the_dialogue(world: RunningGateway, sink: Sink) -> None:
    env = {
        **os.environ,
        "SCRIPTMAIL_SOCKET": str(world.settings.intake.socket),
        "SCRIPTMAIL_MAILDROP": str(world.settings.intake.maildrop),
    }
    session = PipeSession(env)
    code, ehlo = session.command("EHLO symfony.test")
    assert code == 250 and "SMTPUTF8" in ehlo.splitlines()
    assert session.command("MAIL FROM:<josé@shop.example>")[0] == 553  # undeclared
    assert session.command("MAIL FROM:<josé@shop.example> SMTPUTF8")[0] == 250
    code, text = session.command(b"RCPT TO:<j\xfcrgen@sink.test>")
    assert code == 553 and "not valid UTF-8" in text
    assert session.command("RCPT TO:<jürgen@bücher.example>")[0] == 250
    assert session.command("DATA")[0] == 354
    session.send("Subject: Grüße\r\n\r\nx\r\n.\r\n".encode())
    assert session.reply()[0] == 250
    assert session.close() == 0
    (received,) = sink.wait_for(1)
    assert received.recipients == ["jürgen@bücher.example"] and received.mail_from == "josé@shop.example"


def test_sendmail_keeps_a_message_whose_directory_and_arguments_are_not_utf8(
    world: RunningGateway, sink: Sink, tmp_path: Path
) -> None:
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9")  # a Latin-1 directory name
    os.mkdir(odd)
    env = {"SCRIPTMAIL_SOCKET": str(world.settings.intake.socket), "SCRIPTMAIL_MAILDROP": str(world.settings.intake.maildrop)}
    result = subprocess.run(
        [SENDMAIL, "-i", b"-FJos\xe9", "ana@sink.test"],
        input=b"Subject: x\n\nbody\n",
        capture_output=True,
        env=env,
        cwd=odd,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    sink.wait_for(1)
    (row,) = wait_status(world.engine, "sent", 1)
    with world.engine.connect() as connection:
        cwd, command = connection.execute(select(messages.c.cwd, messages.c.command)).one()
    assert cwd.endswith("caf\ufffd") and "Jos\ufffd" in command


# --- notices about mail that needed SMTPUTF8 (RFC 6533) ----------------------------------------


@pytest.fixture
def noticing(legacy_sink: Sink, make_gateway, sink: Sink) -> Iterator[RunningGateway]:
    """The same world, writing notices at once; the senders' domain, sink.test, is the sink that offers SMTPUTF8."""
    dns_server = DnsServer({(f"{LEGACY}.", "MX"): ["10 mx.legacy.test."], ("mx.legacy.test.", "A"): ["127.0.0.2"]}).start()
    try:
        yield make_gateway(
            nameservers=["127.0.0.1"], dns_port=dns_server.port, smtp_port=sink.port, connect_timeout=2,
            control={"notice_interval": 0.2},
        )  # fmt: skip
    finally:
        dns_server.stop()


def test_a_utf8_sender_gets_a_global_notice_through_a_server_that_offers_smtputf8(
    noticing: RunningGateway, legacy_sink: Sink, sink: Sink
) -> None:
    message = "From: José <josé@sink.test>\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode()
    _submit_utf8(noticing, "josé@sink.test", ["jürgen@müller.example"], message)
    wait_status(noticing.engine, "bounced", 1)

    (notice,) = sink.wait_for(1)
    assert notice.mail_from == "" and notice.recipients == ["josé@sink.test"]
    assert "SMTPUTF8" in notice.mail_options  # the notice needs it as the message did
    parsed = email.message_from_bytes(notice.data, policy=email.policy.default)
    assert parsed["To"] == "josé@sink.test" and b"=?utf-8?" not in notice.data
    kinds = [part.get_content_type() for part in parsed.iter_parts()]
    assert kinds == ["text/plain", "message/global-delivery-status", "message/global-headers"]
    status = notice.data.split(b"Content-Type: message/global-delivery-status", 1)[1].split(b"\r\n--", 1)[0]
    fields = dict(
        line.split(": ", 1) for line in status.decode("utf-8").split("\r\n") if ": " in line
    )  # by hand: the last block is the recipient's
    assert fields["Final-Recipient"] == "utf-8; jürgen@müller.example"
    assert fields["Original-Recipient"] == "utf-8; jürgen@müller.example"
    assert fields["Status"] == "5.6.7" and fields["Action"] == "failed"
    headers = notice.data.split(b"Content-Type: message/global-headers", 1)[1]
    assert "Subject: Grüße".encode() in headers
    assert legacy_sink.messages == []
