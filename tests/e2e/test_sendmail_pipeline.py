"""PHP's way in: `scriptmail-sendmail -t -i` to a running gateway, and to a stopped one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select, update

from scriptmail.store import log as store_log
from scriptmail.store.engine import for_writing
from scriptmail.store.hostings import add_hosting
from scriptmail.store.schema import recipients
from tests.support.gateway import RunningGateway, wait_status
from tests.support.sink import Behaviour, Sink

SENDMAIL = str(Path(sys.executable).with_name("scriptmail-sendmail"))

PHP_MESSAGE = (
    b"To: buyer@sink.test\n"
    b"Bcc: audit@sink.test\n"
    b"Subject: Contact form\n"
    b"X-PHP-Originating-Script: 1000:contact.php\n"
    b"\n"
    b"Hello from PHP.\n"
    b".\n"
    b"The dot above is text.\n"
)


def sendmail(gateway: RunningGateway, *args: str, data: bytes = PHP_MESSAGE, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = os.environ | {
        "SCRIPTMAIL_SOCKET": str(gateway.settings.intake.socket),
        "SCRIPTMAIL_MAILDROP": str(gateway.settings.intake.maildrop),
    }
    return subprocess.run([SENDMAIL, *args], input=data, capture_output=True, env=env, timeout=30, cwd=cwd)


def test_php_mail_is_delivered_with_crlf_and_without_bcc(gateway: RunningGateway, sink: Sink, tmp_path: Path) -> None:
    result = sendmail(gateway, "-t", "-i", "-f", "web@shop.example", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    (received,) = sink.wait_for(1)
    assert sorted(received.recipients) == ["audit@sink.test", "buyer@sink.test"]
    assert received.mail_from == "web@shop.example"
    assert b"Bcc" not in received.data
    assert received.data.endswith(b"Hello from PHP.\r\n.\r\nThe dot above is text.\r\n")
    assert b"\r\n..\r\n" in received.raw  # the lone dot is text, dot-stuffed on the wire
    rows = wait_status(gateway.engine, "sent", 2)
    assert {row["origin"] for row in rows} == {"sendmail"}
    assert {row["script"] for row in rows} == {"1000:contact.php"}


def test_injection_options_are_refused_and_nothing_is_queued(gateway: RunningGateway, sink: Sink) -> None:
    result = sendmail(gateway, "-t", "-i", "-X/var/www/shell.php", "-OQueueDirectory=/tmp")
    assert result.returncode == 64
    assert b"-X" in result.stderr
    with gateway.engine.connect() as connection:
        assert store_log.recent(connection) == []


def test_mail_written_while_the_daemon_is_down_is_delivered_when_it_returns(make_gateway, sink: Sink) -> None:
    gateway = make_gateway()
    gateway.stop()
    result = sendmail(gateway, "-t", "-i")
    assert result.returncode == 0, result.stderr
    assert len(list((gateway.settings.intake.maildrop / "new").iterdir())) == 1

    restarted = make_gateway()
    (received,) = sink.wait_for(1)
    assert b"Subject: Contact form" in received.data
    rows = wait_status(restarted.engine, "sent", 2)
    assert {row["origin"] for row in rows} == {"maildrop"}
    assert list((gateway.settings.intake.maildrop / "new").iterdir()) == []


def test_sendmail_bp_lists_only_the_callers_waiting_mail(gateway: RunningGateway, sink: Sink) -> None:
    sink.behaviour = Behaviour(rcpt=lambda address: "451 4.7.1 greylisted, come back later")
    assert sendmail(gateway, "-t", "-i", "-f", "web@shop.example").returncode == 0
    wait_status(gateway.engine, "deferred", 2)

    listing = sendmail(gateway, "-bp", data=b"")
    assert listing.returncode == 0, listing.stderr
    text = listing.stdout.decode()
    assert "web@shop.example" in text and "buyer@sink.test" in text and "audit@sink.test" in text
    assert "(4.7.1 greylisted, come back later)" in text
    assert text.rstrip().endswith("in 1 Request.")


def test_sendmail_q_retries_the_callers_deferred_mail_now_and_qr_one_domain(make_gateway, sink: Sink) -> None:
    gateway = make_gateway(backoff_min=3600, backoff_max=3600)  # without -q the next try is an hour away
    refusing = {"buyer@sink.test", "audit@sink.test"}
    sink.behaviour = Behaviour(rcpt=lambda a: "451 4.7.1 greylisted" if a in refusing else "250 2.1.5 ok")
    assert sendmail(gateway, "-t", "-i").returncode == 0
    wait_status(gateway.engine, "deferred", 2)
    with for_writing(gateway.engine).begin() as connection:  # another hosting's deferred mail must not move
        other = add_hosting(connection, "other.example", "o@sink.test", uid=os.getuid() + 777, plan="unlimited")
        connection.execute(update(recipients).where(recipients.c.address == "audit@sink.test").values(hosting_id=other.id))

    refusing.clear()
    result = sendmail(gateway, "-qRelsewhere.test", data=b"")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    time.sleep(1)
    assert sink.messages == []
    assert sendmail(gateway, "-q", data=b"").returncode == 0
    (received,) = sink.wait_for(1)
    assert received.recipients == ["buyer@sink.test"]
    time.sleep(1)
    with gateway.engine.connect() as connection:
        statuses = dict(connection.execute(select(recipients.c.address, recipients.c.status)).all())
    assert statuses == {"buyer@sink.test": "sent", "audit@sink.test": "deferred"}


def test_sendmail_q_with_the_daemon_down_says_so(make_gateway) -> None:
    gateway = make_gateway()
    gateway.stop()
    result = sendmail(gateway, "-q", data=b"")
    assert result.returncode == 69 and b"not reachable" in result.stderr


def test_sendmail_bv_judges_addresses_and_sends_nothing(gateway: RunningGateway, sink: Sink) -> None:
    result = sendmail(gateway, "-bv", "buyer@sink.test", "user%other@[10.0.0.1]", data=b"")
    assert result.returncode == 65
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "buyer@sink.test: deliverable"
    assert lines[1].startswith("user%other@[10.0.0.1]: undeliverable: 5.1.3")
    assert sendmail(gateway, "-bv", "buyer@sink.test", data=b"").returncode == 0
    time.sleep(0.5)
    assert sink.messages == []
    with gateway.engine.connect() as connection:
        assert store_log.recent(connection) == []


def test_newaliases_and_bi_succeed_and_do_nothing(gateway: RunningGateway, tmp_path: Path) -> None:
    link = tmp_path / "newaliases"
    link.symlink_to(SENDMAIL)
    assert subprocess.run([str(link)], capture_output=True, timeout=30).returncode == 0
    assert sendmail(gateway, "-bi", data=b"").returncode == 0
    with gateway.engine.connect() as connection:
        assert store_log.recent(connection) == []
