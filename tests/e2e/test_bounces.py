"""Bounces that come back later: VERP senders, DSNs, feedback reports, forgeries (issue 4)."""

from __future__ import annotations

import smtplib
import time

import pytest
from sqlalchemy import select, update

from scriptmail.config import PlanSettings
from scriptmail.store import activity, stats, suppressions
from scriptmail.store.engine import for_writing
from scriptmail.store.schema import attempts, hostings, inbound_reports, recipients
from tests.support.gateway import HOSTING, PASSWORD, RunningGateway, submit, wait_status
from tests.support.raw_smtp import RawSession
from tests.support.sink import Sink

DOMAIN = "bounces.gateway.test"


@pytest.fixture
def gateway(make_gateway) -> RunningGateway:
    return make_gateway(bounces={"domain": DOMAIN, "listen": "127.0.0.1:0"})


def _send_one(gateway: RunningGateway, sink: Sink, to: str = "reader@sink.test") -> tuple[int, str]:
    submit(gateway.smtp_port, b"Subject: newsletter\r\n\r\nhello\r\n", [to], sender="news@shop.example")
    (received,) = sink.wait_for(1)
    (row,) = wait_status(gateway.engine, "sent", 1)
    return row["id"], received.mail_from


def _report(gateway: RunningGateway, verp: str, data: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", gateway.gateway.bounce_port, timeout=10) as client:
        client.ehlo("mx.sink.test")
        client.mail("")
        code, text = client.rcpt(verp)
        if code != 250:
            return code, text
        return client.data(data)


def _dsn(verp: str, status: str = "5.1.1", diagnostic: str = "smtp; 550 5.1.1 <reader@sink.test>: user unknown") -> bytes:
    return (
        f"From: MAILER-DAEMON@sink.test\r\nTo: {verp}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.sink.test\r\n\r\n"
        f"Final-Recipient: rfc822; reader@sink.test\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Remote-MTA: dns; store.sink.test\r\nDiagnostic-Code: {diagnostic}\r\n\r\n--B--\r\n"
    ).encode()


def test_mail_leaves_with_its_own_verp_sender_and_the_log_keeps_the_original(gateway: RunningGateway, sink: Sink) -> None:
    recipient_id, mail_from = _send_one(gateway, sink)
    assert mail_from.endswith(f"@{DOMAIN}") and mail_from.startswith("b-")
    with gateway.engine.connect() as connection:
        (row,) = [r for r in stats.bounces(connection, 1, limit=5)] or [None]
    assert row is None  # nothing in error yet
    submit(gateway.smtp_port, b"Subject: two\r\n\r\nhi\r\n", ["a@sink.test", "b@sink.test"])
    first, second = sink.wait_for(3)[1:]
    assert first.mail_from != second.mail_from  # one envelope sender per recipient


def test_a_later_dsn_turns_the_recipient_bounced_with_its_diagnostic(gateway: RunningGateway, sink: Sink) -> None:
    recipient_id, verp = _send_one(gateway, sink)
    code, _ = _report(gateway, verp, _dsn(verp))
    assert code == 250
    (bounced,) = wait_status(gateway.engine, "bounced", 1)
    assert bounced["last_code"] == 550 and "5.1.1" in bounced["last_text"] and "user unknown" in bounced["last_text"]
    with gateway.engine.connect() as connection:
        attempt = connection.execute(select(attempts).where(attempts.c.recipient_id == recipient_id).order_by(attempts.c.id.desc())).first()
        assert (attempt.node, attempt.mx_host, attempt.code) == ("bounce-report", "store.sink.test", 550)
        hosting_id = connection.execute(select(recipients.c.hosting_id)).scalar()
        counters = stats.counters(connection, hosting_id, gateway.settings.plan("unlimited"), time.time())
        assert (counters["sent"], counters["bounce"]) == (0, 1)  # the counters follow the log
        assert activity.totals_since(connection, hosting_id, 0)["unknown_user"] == 1
    # The same report again changes nothing more.
    assert _report(gateway, verp, _dsn(verp))[0] == 250
    with gateway.engine.connect() as connection:
        assert len(connection.execute(select(attempts).where(attempts.c.recipient_id == recipient_id)).all()) == 2
        # The later "user unknown" puts the address on the hosting's suppression list too.
        (entry,) = suppressions.entries(connection, hosting_id, time.time())
        assert (entry["value"], entry["reason"], entry["code"]) == ("reader@sink.test", "no-such-user", 550)


def test_a_forged_or_foreign_address_is_refused_at_rcpt(gateway: RunningGateway, sink: Sink) -> None:
    _, verp = _send_one(gateway, sink)
    local, _, _ = verp.partition("@")
    forged = local[:-1] + ("a" if local[-1] != "a" else "b") + f"@{DOMAIN}"
    assert _report(gateway, forged, _dsn(forged))[0] == 550
    assert _report(gateway, f"postmaster@{DOMAIN}", b"x")[0] == 550
    assert _report(gateway, f"{local}@other.test", b"x")[0] == 550
    assert _report(gateway, "someone@sink.test", b"x")[0] == 550  # never a relay
    time.sleep(0.3)
    with gateway.engine.connect() as connection:
        assert connection.execute(select(recipients.c.status)).scalars().all() == ["sent"]


def _arf(verp: str) -> bytes:
    return (
        f"From: abuse@sink.test\r\nTo: {verp}\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n"
        "--F\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
        "--F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: SomeISP/1.0\r\n"
        "Version: 1\r\nOriginal-Rcpt-To: reader@sink.test\r\n\r\n"
        "--F\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: newsletter\r\n\r\n--F--\r\n"
    ).encode()


def test_a_feedback_report_counts_as_a_complaint(gateway: RunningGateway, sink: Sink) -> None:
    recipient_id, verp = _send_one(gateway, sink)
    assert _report(gateway, verp, _arf(verp))[0] == 250
    deadline = time.monotonic() + 10
    while True:
        with gateway.engine.connect() as connection:
            hosting_id = connection.execute(select(recipients.c.hosting_id)).scalar()
            complaints = activity.totals_since(connection, hosting_id, 0)["complaints"]
            status = connection.execute(select(recipients.c.status)).scalar()
        if complaints or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (complaints, status) == (1, "sent")


def test_a_malformed_report_is_kept_unparsed_and_nothing_breaks(gateway: RunningGateway, sink: Sink) -> None:
    recipient_id, verp = _send_one(gateway, sink)
    junk = b"Content-Type: multipart/report; boundary=\"\r\n\r\n\x00\xff garbage " * 100
    assert _report(gateway, verp, junk)[0] == 250
    time.sleep(0.3)
    with gateway.engine.connect() as connection:
        kinds = connection.execute(select(inbound_reports.c.kind)).scalars().all()
        status = connection.execute(select(recipients.c.status)).scalar()
    assert kinds == ["unparsed"] and status == "sent"


def test_bounces_can_be_forwarded_to_the_original_sender(make_gateway, sink: Sink) -> None:
    gateway = make_gateway(bounces={"domain": DOMAIN, "listen": "127.0.0.1:0", "forward": True})
    submit(gateway.smtp_port, b"Subject: newsletter\r\n\r\nhello\r\n", ["reader@sink.test"], sender="news@sink.test")
    (original,) = sink.wait_for(1)
    wait_status(gateway.engine, "sent", 1)  # a report can only bounce what is recorded as sent
    assert _report(gateway, original.mail_from, _dsn(original.mail_from))[0] == 250
    forwarded = sink.wait_for(2)[1]
    assert forwarded.recipients == ["news@sink.test"]
    assert forwarded.mail_from == ""  # a bounce travels with the null sender: it never bounces back
    assert b"5.1.1" in forwarded.data


def test_complaints_block_the_hosting_as_spam(make_gateway, sink: Sink) -> None:
    gateway = make_gateway(
        bounces={"domain": DOMAIN, "listen": "127.0.0.1:0"},
        control={"policy_interval": 0.3},
        plans={"touchy": PlanSettings(complaint_limit=2)},
    )
    with for_writing(gateway.engine).begin() as connection:
        connection.execute(update(hostings).where(hostings.c.name == HOSTING).values(plan="touchy"))
    submit(gateway.smtp_port, b"Subject: newsletter\r\n\r\nhello\r\n", ["a@sink.test", "b@sink.test"])
    for message in sink.wait_for(2):
        assert _report(gateway, message.mail_from, _arf(message.mail_from))[0] == 250
    deadline = time.monotonic() + 10
    while True:
        with gateway.engine.connect() as connection:
            state = connection.execute(select(hostings.c.state).where(hostings.c.name == HOSTING)).scalar()
        if state == "spam" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert state == "spam"


def _global_dsn(verp: str) -> bytes:
    """A global DSN (RFC 6533) as a server that offers SMTPUTF8 sends it about mail to a UTF-8 mailbox."""
    return (
        f"From: Systemnachricht <postmaster@sink.test>\r\nTo: {verp}\r\nSubject: Unzustellbar: Grüße\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
        "--B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Ihre Nachricht an jürgen@sink.test konnte nicht zugestellt werden.\r\n"
        "--B\r\nContent-Type: message/global-delivery-status\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Reporting-MTA: dns; mx.sink.test\r\n\r\nFinal-Recipient: utf-8; jürgen@sink.test\r\nAction: failed\r\n"
        "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <jürgen@sink.test>: Postfach unbekannt\r\n\r\n"
        "--B\r\nContent-Type: message/global-headers\r\n\r\nSubject: Grüße\r\n\r\n--B--\r\n"
    ).encode()


def test_the_listener_offers_smtputf8_and_takes_a_global_dsn_from_a_utf8_sender(gateway: RunningGateway, sink: Sink) -> None:
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=30) as client:
        client.login(HOSTING, PASSWORD)
        message = "Subject: Grüße\r\n\r\nHallo\r\n".encode()
        assert not client.sendmail("news@shop.example", ["jürgen@sink.test"], message, mail_options=["SMTPUTF8"])
    (received,) = sink.wait_for(1)
    assert "SMTPUTF8" in received.mail_options and received.mail_from.endswith(f"@{DOMAIN}")
    wait_status(gateway.engine, "sent", 1)
    verp = received.mail_from

    session = RawSession(gateway.gateway.bounce_port)
    _, ehlo = session.command("EHLO mx.sink.test")
    assert "SMTPUTF8" in ehlo.splitlines() and "8BITMIME" in ehlo.splitlines()
    # A non-ASCII sender needs the parameter; broken UTF-8 and look-alike domains get a clear refusal.
    assert session.command("MAIL FROM:<rückläufer@sink.test>")[0] == 553
    assert session.command("RSET")[0] == 250
    code, text = session.command("MAIL FROM:<x@раypal.example> SMTPUTF8")
    assert code == 553 and "mixes scripts" in text.encode("latin-1").decode("utf-8")
    assert session.command("RSET")[0] == 250
    assert session.command(b"MAIL FROM:<jos\xe9@sink.test> SMTPUTF8")[0] >= 500  # Latin-1, not UTF-8
    assert session.command("RSET")[0] == 250
    assert session.command("MAIL FROM:<rückläufer@sink.test> SMTPUTF8")[0] == 250
    assert session.command(f"RCPT TO:<{verp}>")[0] == 250
    assert session.command("RCPT TO:<jürgen@sink.test>")[0] == 550  # never a relay, in UTF-8 either
    assert session.command("DATA")[0] == 354
    session.send(_global_dsn(verp) + b".\r\n")
    assert session.reply()[0] == 250
    session.close()

    (bounced,) = wait_status(gateway.engine, "bounced", 1)
    assert bounced["recipient"] == "jürgen@sink.test" and bounced["last_code"] == 550
    assert "Postfach unbekannt" in bounced["last_text"]
    with gateway.engine.connect() as connection:
        (entry,) = suppressions.entries(connection, connection.execute(select(recipients.c.hosting_id)).scalar(), time.time())
        assert entry["value"] == "jürgen@sink.test"
